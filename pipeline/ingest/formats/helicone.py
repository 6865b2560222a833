"""Helicone request exports (`@helicone/export` JSONL/JSON/CSV rows of `HeliconeRequest`, formats.md §g).

The provider bodies are in `request_body` / `response_body` when the export fetched them
(`--include-body`); otherwise only `signed_body_url` points at them and the row keeps counts,
model and timing, with the missing bodies noted in `metadata_json`.

Traps: usage columns follow Helicone's own convention (unverified upstream): the raw
`response_body.usage` wins when present; otherwise `prompt_tokens` is taken as INCLUSIVE of the
cache columns, except when the cache counts exceed it or the provider is Anthropic (whose input
count excludes cache tokens). `cache_enabled` / `cache_reference_id` are Helicone's own response
cache, not provider prompt caching.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.ingest.bodies.partial import recover_bodies
from pipeline.ingest.formats import Context, record_format
from pipeline.ingest.formats.envelope import feedback_score
from pipeline.ingest.rows import (
    RecordError,
    Row,
    as_float,
    as_int,
    as_str,
    dumps,
    make_row,
    parse_ts,
    usage_buckets,
    usage_inclusive,
)

NAME = "helicone"
_PATH_HINTS = {"/v1/chat/completions": "openai_chat", "/v1/messages": "anthropic_messages", "/v1/responses": "openai_responses"}


def _is_helicone(rec: Mapping[str, Any]) -> bool:
    return "request_id" in rec and "request_created_at" in rec and "response_status" in rec and (
        "signed_body_url" in rec or "request_body" in rec or "request_path" in rec or "provider" in rec
    )


def _usage(rec: Mapping[str, Any], provider: str | None) -> Row:
    prompt = as_int(rec.get("prompt_tokens"))
    read = as_int(rec.get("prompt_cache_read_tokens"))
    write = as_int(rec.get("prompt_cache_write_tokens"))
    output = as_int(rec.get("completion_tokens"))
    raw = {k: rec.get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens", "prompt_cache_read_tokens",
                                   "prompt_cache_write_tokens", "prompt_audio_tokens", "completion_audio_tokens") if rec.get(k) is not None}
    if prompt is not None and (provider == "anthropic" or (read or 0) + (write or 0) > prompt):
        return usage_buckets(uncached=prompt, cache_read=read, write_unspecified=write, output=output, raw=raw or None)
    return usage_inclusive(total_input=prompt, cache_read=read, cache_write=write, output=output, raw=raw or None)


def _body(value: Any) -> Mapping[str, Any] | None:
    if isinstance(value, dict):
        return value or None
    return None


@record_format(
    NAME,
    "Helicone request export row: `request_id` + `request_created_at` + `response_status` (+ `request_body`/`response_body` "
    "or `signed_body_url`)",
    _is_helicone,
    order=30,
)
def parse_helicone(rec: Mapping[str, Any], ctx: Context) -> list[Row]:
    provider = (as_str(rec.get("provider")) or "").lower() or None
    req, resp = _body(rec.get("request_body")), _body(rec.get("response_body"))
    notes: dict[str, Any] = {}
    fields: Row = {}
    if req is not None or resp is not None:
        try:
            # A request in one shape and a response in another, or one side unreadable, keeps the
            # side that parses (the usage columns keep the row even when neither does).
            recovered = recover_bodies({"request_body": req}, {"response_body": resp}, usage_recovered=True,
                                       hint=_PATH_HINTS.get(as_str(rec.get("request_path")) or ""))
            fields = recovered.fields
            if recovered.partial:
                notes["partial"] = recovered.partial
        except RecordError as e:
            notes["body_not_parsed"] = e.detail
    elif rec.get("signed_body_url"):
        notes["bodies_unavailable"] = "exported without --include-body (signed_body_url only)"
    usage: Row = {}
    if fields.get("usage_missing") is not False:
        usage = _usage(rec, provider)
    status = as_int(rec.get("response_status"))
    props = rec.get("request_properties") if isinstance(rec.get("request_properties"), dict) else (
        rec.get("properties") if isinstance(rec.get("properties"), dict) else {})
    session = next((props[k] for k in props if k.lower() in ("helicone-session-id", "session-id", "session_id")), None)
    rating = rec.get("feedback_rating")
    feedback = {"rating": rating} if isinstance(rating, bool) else None
    scores = rec.get("scores") if isinstance(rec.get("scores"), dict) and rec.get("scores") else None
    t0, t1 = parse_ts(rec.get("request_created_at")), parse_ts(rec.get("response_created_at"))
    latency = as_float(rec.get("delay_ms"))
    if latency is None and t0 and t1:
        latency = (t1 - t0).total_seconds() * 1000
    meta = {
        "properties": props or None,
        "helicone_cache_hit": bool(rec.get("cache_reference_id")) or None,
        "prompt_id": rec.get("prompt_id"),
        "prompt_version": rec.get("prompt_version"),
        "target_url": rec.get("target_url"),
        **notes,
    }
    failed = status is not None and status >= 400
    return [
        make_row(
            fields,
            record=rec,
            request_id=as_str(rec.get("request_id")),
            ts=t0,
            provider=provider,
            model=as_str(rec.get("request_model") or rec.get("model")) if not fields.get("model") else None,
            model_resolved=as_str(rec.get("response_model")) if not fields.get("model_resolved") else None,
            user_id=as_str(rec.get("request_user_id")),
            session_id=as_str(session),
            status_code=status,
            finish_reason="error" if failed else None,
            error_type=f"http_{status}" if failed and not fields.get("error_type") else None,
            latency_ms=latency,
            ttft_ms=as_float(rec.get("time_to_first_token")),
            cost_reported_usd=as_float(rec.get("cost") if rec.get("cost") is not None else rec.get("costUSD")),
            feedback_score=feedback_score(feedback),
            feedback_json=dumps({**(feedback or {}), **({"scores": scores} if scores else {})}),
            metadata_json=dumps({k: v for k, v in meta.items() if v is not None}),
            source_format=NAME,
            **usage,
        )
    ]
