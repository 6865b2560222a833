"""Langfuse observation exports (UI/blob-storage export of `observations` / `observations_v2`,
formats.md §h1). Only `GENERATION` observations are model calls; spans, events, agents, tools,
retrievers and embeddings are skipped (agent observations often restate their children's usage).

Traps: `usage_details` types are ADDITIVE (`input` excludes `input_cached_tokens`,
`output` excludes `output_reasoning*`), except for clients that put the whole prompt into `input`
and the cache count beside it (langfuse#10592): when `total` says input + output already add up,
the cached count is taken as part of `input`. `latency` / `time_to_first_token` changed unit
(ms -> s) in 2026, so both are recomputed from the timestamps. Timestamps are
`YYYY-MM-DD HH:MM:SS.ffffff` UTC without a zone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from pipeline.ingest.bodies import message, provider_from_model, tool_call
from pipeline.ingest.bodies.openai_chat import openai_chat_request
from pipeline.ingest.bodies.partial import missing_parts, with_partial
from pipeline.ingest.formats import Context, record_format, skip_format
from pipeline.ingest.rows import (
    RecordError,
    Row,
    Skip,
    as_float,
    as_int,
    as_str,
    bounded,
    dumps,
    make_row,
    parse_ts,
    usage_buckets,
)

NAME = "langfuse_observation"
_CACHE_READ = ("input_cached_tokens", "input_cache_read", "cache_read_input_tokens", "input_cache_read_tokens", "prompt_details.cache_read")
_CACHE_WRITE = ("input_cache_creation", "cache_creation_input_tokens", "input_cache_write", "prompt_details.cache_write")
_REASONING = ("output_reasoning", "output_reasoning_tokens", "reasoning_tokens")


def _is_observation(rec: Mapping[str, Any]) -> bool:
    return "trace_id" in rec and isinstance(rec.get("type"), str) and rec["type"].isupper() and (
        "provided_model_name" in rec or "usage_details" in rec or "start_time" in rec
    )


def _decoded(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def _sum(d: Mapping[str, Any], keys: tuple[str, ...]) -> int | None:
    vals = [as_int(d[k]) for k in keys if k in d and as_int(d[k]) is not None]
    return sum(vals) if vals else None


def usage_langfuse(details: Any) -> Row:
    if not isinstance(details, dict) or not details:
        return usage_buckets()
    inp, out, total = as_int(details.get("input")), as_int(details.get("output")), as_int(details.get("total"))
    read, write, reasoning = _sum(details, _CACHE_READ), _sum(details, _CACHE_WRITE), _sum(details, _REASONING)
    uncached = inp
    if inp is not None and total is not None and (read or write) and total == inp + (out or 0) + (reasoning or 0):
        uncached = inp - (read or 0) - (write or 0)  # the client folded cached tokens into `input`
    output = None if out is None and reasoning is None else (out or 0) + (reasoning or 0)
    return usage_buckets(uncached=uncached, cache_read=read, write_unspecified=write, output=output, reasoning=reasoning, raw=details)


def _input(value: Any) -> Row:
    value = _decoded(value)
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        value = value["messages"]
    if isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value):
        try:
            fields = openai_chat_request({"messages": value})
            return {k: fields[k] for k in ("system_text", "messages")}
        except RecordError:
            pass
    if value is None:
        return {}
    return {"messages": [message("user", value if isinstance(value, str) else dumps(value))]}


def _output(value: Any, tool_calls: Any) -> Row:
    value = _decoded(value)
    calls = []
    for tc in tool_calls or []:
        tc = _decoded(tc)
        if isinstance(tc, dict):
            fn = tc.get("function") if isinstance(tc.get("function"), dict) else tc
            calls.append(tool_call(tc.get("id"), fn.get("name"), fn.get("arguments")))
    if isinstance(value, dict):
        content = value.get("content")
        text = content if isinstance(content, str) else dumps(content) if content is not None else None
        for tc in value.get("tool_calls") or []:
            if isinstance(tc, dict):
                fn = tc.get("function") if isinstance(tc.get("function"), dict) else tc
                calls.append(tool_call(tc.get("id"), fn.get("name"), fn.get("arguments")))
    else:
        text = value if isinstance(value, str) or value is None else dumps(value)
    return {"response_text": text, "response_tool_calls": calls or None, "n_choices": 1 if text is not None or calls else None}


@record_format(
    NAME,
    "Langfuse observation export row: `trace_id` + upper-case `type` (GENERATION|SPAN|…) + `provided_model_name`/`usage_details`; "
    "GENERATION rows only",
    _is_observation,
    order=30,
)
def parse_observation(rec: Mapping[str, Any], ctx: Context) -> list[Row]:
    otype = rec["type"]
    if otype != "GENERATION":
        raise Skip("not_an_llm_call", f"Langfuse {otype} observation")
    start, end = parse_ts(rec.get("start_time")), parse_ts(rec.get("end_time"))
    first_token = parse_ts(rec.get("completion_start_time"))
    params = _decoded(rec.get("model_parameters"))
    model = as_str(rec.get("provided_model_name") or rec.get("model"))
    level = as_str(rec.get("level"))
    calls_col = _decoded(rec.get("tool_calls"))
    fields: Row = {**_input(rec.get("input")), **_output(rec.get("output"), calls_col if isinstance(calls_col, list) else None)}
    tools = _decoded(rec.get("tool_definitions"))
    meta = {k: rec.get(k) for k in ("trace_id", "parent_observation_id", "name", "trace_name", "prompt_name", "prompt_version",
                                     "environment", "tags", "release", "version") if rec.get(k) not in (None, "", [])}
    return [
        make_row(
            {**fields, **usage_langfuse(rec.get("usage_details"))},
            record=rec,
            request_id=as_str(rec.get("id")),
            ts=start,
            provider=provider_from_model(model),
            endpoint="chat",
            model=model,
            user_id=as_str(rec.get("user_id")),
            session_id=as_str(rec.get("session_id")),
            parent_id=None,
            tools_json=dumps(tools) if isinstance(tools, list | dict) else None,
            request_params=dumps(params) if isinstance(params, dict) else None,
            finish_reason="error" if level == "ERROR" else None,
            error_message=bounded(as_str(rec.get("status_message"))) if level == "ERROR" else None,
            error_type="error" if level == "ERROR" else None,
            latency_ms=(end - start).total_seconds() * 1000 if start and end else None,
            ttft_ms=(first_token - start).total_seconds() * 1000 if start and first_token else None,
            cost_reported_usd=as_float(rec.get("total_cost")),
            metadata_json=dumps(with_partial(meta, missing_parts({**fields, "finish_reason": "error" if level == "ERROR" else None}))),
            source_format=NAME,
        )
    ]


def _is_trace_or_score(rec: Mapping[str, Any]) -> bool:
    score = "data_type" in rec and rec.get("source") in ("API", "ANNOTATION", "EVAL") and "name" in rec
    trace = "bookmarked" in rec and "timestamp" in rec and "id" in rec and "observations" not in rec and "type" not in rec
    return score or trace


parse_trace_or_score = skip_format(
    "langfuse_trace_or_score",
    "Langfuse trace or score export row (`bookmarked` + `timestamp`, or `data_type` + `source`): valid, not a model call (skipped)",
    _is_trace_or_score,
    lambda rec: f"Langfuse {'score' if 'data_type' in rec else 'trace'} row (model calls are the GENERATION observations)",
    order=30,
)
