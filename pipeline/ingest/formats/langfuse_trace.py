"""Langfuse trace downloads: the UI's "download trace" button and the public API
`GET /api/public/traces/{id}` (formats.md §h1, camelCase fields).

Two shapes: `{trace: {...}, observations: [...]}` (UI download) and a trace object with an
`observations` array inside (public API; there `observations` may also be bare ids, which carry
nothing to read). Each observation is mapped onto the snake_case observation export and read by
`langfuse.parse_observation`, so both exports share one reading of Langfuse's usage rules: only
GENERATION observations are model calls, the others are listed as skipped items.

Usage: `usageDetails` (additive types, plus OpenInference-style `prompt_details.*` /
`completion_details.*` keys where the reasoning count is part of `output`); older exports only
have `inputUsage` / `outputUsage` / `totalUsage` or `usage {input, output, total}`.
Scores (`scores[]` of the trace) become the rows' feedback: a score on an observation goes to that
generation, a trace-level score to every generation of the trace.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.ingest.formats import Context, record_format
from pipeline.ingest.formats.langfuse import parse_observation
from pipeline.ingest.rows import Row, Skip, as_float, as_int, dumps

NAME = "langfuse_trace"
_SNAKE = {
    "traceId": "trace_id", "startTime": "start_time", "endTime": "end_time",
    "completionStartTime": "completion_start_time", "modelParameters": "model_parameters",
    "statusMessage": "status_message", "parentObservationId": "parent_observation_id",
    "promptName": "prompt_name", "promptVersion": "prompt_version", "totalCost": "total_cost",
    "toolDefinitions": "tool_definitions", "toolCalls": "tool_calls",
}


def _trace_and_observations(rec: Mapping[str, Any]) -> tuple[Mapping[str, Any], list] | None:
    if isinstance(rec.get("trace"), dict) and isinstance(rec.get("observations"), list):
        return rec["trace"], rec["observations"]
    if isinstance(rec.get("observations"), list) and "id" in rec and "timestamp" in rec and (
        "projectId" in rec or "htmlPath" in rec or "sessionId" in rec
    ):
        return rec, rec["observations"]
    return None


def _usage_details(obs: Mapping[str, Any]) -> dict[str, Any] | None:
    details = obs.get("usageDetails")
    if isinstance(details, dict) and details:
        return dict(details)
    usage = obs.get("usage") if isinstance(obs.get("usage"), dict) else {}
    fallback = {
        "input": obs.get("inputUsage", usage.get("input", obs.get("promptTokens"))),
        "output": obs.get("outputUsage", usage.get("output", obs.get("completionTokens"))),
        "total": obs.get("totalUsage", usage.get("total", obs.get("totalTokens"))),
    }
    fallback = {k: v for k, v in fallback.items() if as_int(v) is not None}
    return fallback or None


def _observation(obs: Mapping[str, Any], trace: Mapping[str, Any]) -> dict[str, Any]:
    out = {_SNAKE.get(k, k): v for k, v in obs.items()}
    out.update(
        provided_model_name=obs.get("model"),
        usage_details=_usage_details(obs),
        total_cost=obs.get("totalCost", obs.get("calculatedTotalCost")),
        user_id=trace.get("userId"),
        session_id=trace.get("sessionId"),
        trace_name=trace.get("name"),
        tags=trace.get("tags"),
        release=trace.get("release"),
    )
    return out


def _score_value(score: Mapping[str, Any]) -> float | None:
    """BOOLEAN scores -> ±1; NUMERIC scores in [0, 1] -> [-1, 1]; others carry no direction."""
    value = as_float(score.get("value"))
    if value is None:
        return None
    kind = score.get("dataType")
    if kind == "BOOLEAN":
        return 1.0 if value else -1.0
    if kind in (None, "NUMERIC") and 0 <= value <= 1:
        return 2 * value - 1
    return None


def _feedback(row: Row, obs_id: Any, scores: list) -> None:
    mine = [s for s in scores if isinstance(s, dict) and s.get("observationId") in (None, obs_id)]
    if not mine:
        return
    keep = ("name", "value", "stringValue", "dataType", "source", "comment", "observationId")
    row["feedback_json"] = dumps([{k: s.get(k) for k in keep if s.get(k) is not None} for s in mine])
    values = [v for v in (_score_value(s) for s in mine) if v is not None]
    if values:
        row["feedback_score"] = sum(values) / len(values)


@record_format(
    NAME,
    "Langfuse trace download (UI `{trace, observations}` or API `GET /api/public/traces/{id}`, camelCase): "
    "one row per GENERATION observation, other observations skipped, trace scores as feedback",
    lambda rec: _trace_and_observations(rec) is not None,
    order=25,
)
def parse_trace(rec: Mapping[str, Any], ctx: Context) -> list[Row]:
    trace, observations = _trace_and_observations(rec) or ({}, [])
    scores = trace.get("scores") if isinstance(trace.get("scores"), list) else rec.get("scores") or []
    rows: list[Row] = []
    skipped: list[Skip] = []
    for n, obs in enumerate(observations, start=1):
        if not isinstance(obs, dict):
            skipped.append(Skip("observation_without_body", f"observation {n}: {str(obs)[:80]} (an id only)"))
            continue
        try:
            (row,) = parse_observation(_observation(obs, trace), ctx)
        except Skip as skip:
            skipped.append(Skip(skip.reason, f"observation {obs.get('id')}: {skip.detail}"))
            continue
        reasoning = as_int((obs.get("usageDetails") or {}).get("completion_details.reasoning"))
        if reasoning is not None and row["out_reasoning"] is None:
            row["out_reasoning"] = reasoning  # OpenInference detail: already inside `output`
        row["source_format"] = NAME
        _feedback(row, obs.get("id"), scores)
        rows.append(row)
    if not rows:
        reasons = sorted({s.reason for s in skipped}) or ["no_llm_calls"]
        raise Skip(reasons[0], f"Langfuse trace {trace.get('id')} without GENERATION observations")
    for skipped_item in skipped:
        ctx.skip_item(skipped_item.reason, skipped_item.detail)
    return rows
