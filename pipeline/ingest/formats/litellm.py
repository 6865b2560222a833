"""LiteLLM proxy logs (formats.md §f): `LiteLLM_SpendLogs` rows (JSON or CSV export) and
`StandardLoggingPayload` callback objects.

Traps: `prompt_tokens` is INCLUSIVE of cache reads/writes; provider cache tokens live only in
`metadata.usage_object`; `cache_hit` is LiteLLM's own response cache, not provider caching.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.ingest.bodies.partial import Recovered, recover_bodies, with_partial
from pipeline.ingest.formats import Context, record_format
from pipeline.ingest.rows import (
    RecordError,
    Row,
    as_float,
    as_int,
    as_str,
    bounded,
    dumps,
    get_path,
    make_row,
    parse_ts,
    usage_inclusive,
)


def _is_spend_log(rec: Mapping[str, Any]) -> bool:
    return "request_id" in rec and "call_type" in rec and ("spend" in rec or "startTime" in rec)


def _is_payload(rec: Mapping[str, Any]) -> bool:
    return "trace_id" in rec and "call_type" in rec and "response_cost" in rec and "model_map_information" in rec


def _usage(rec: Mapping[str, Any]) -> Row:
    uo = get_path(rec, "metadata", "usage_object") or get_path(rec, "hidden_params", "usage_object")
    if not isinstance(uo, dict):
        uo = {}
    total = as_int(uo.get("prompt_tokens", rec.get("prompt_tokens")))
    read = as_int(uo.get("cache_read_input_tokens"))
    if read is None:
        read = as_int(get_path(uo, "prompt_tokens_details", "cached_tokens"))
    write = as_int(uo.get("cache_creation_input_tokens"))
    if write is None:
        write = as_int(get_path(uo, "prompt_tokens_details", "cache_creation_tokens"))
    return usage_inclusive(
        total_input=total,
        cache_read=read,
        cache_write=write,
        output=as_int(uo.get("completion_tokens", rec.get("completion_tokens"))),
        reasoning=as_int(get_path(uo, "completion_tokens_details", "reasoning_tokens")),
        raw=uo or {k: rec.get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens")},
    )


def _bodies(rec: Mapping[str, Any], usage: Row) -> Recovered:
    # The conversation may sit in `proxy_server_request` (store_prompts_in_spend_logs) or only in
    # the top-level `messages` column, with tools and parameters in the request body: merge them.
    return recover_bodies(
        {"proxy_server_request": rec.get("proxy_server_request"),
         "messages": {"model": rec.get("model"), "messages": rec.get("messages")}
         if isinstance(rec.get("messages"), list) else None,
         # StandardLoggingPayload: the non-message request parameters (tools, temperature, ...).
         "model_parameters": rec.get("model_parameters")},
        {"response": rec.get("response")},
        usage_recovered=usage.get("usage_missing") is False or any(
            usage.get(k) is not None for k in ("in_uncached", "out_total")),
    )


def _row(rec: Mapping[str, Any], request_id: Any, start: Any, end: Any, first_token: Any, spend: Any) -> Row:
    usage = _usage(rec)
    recovered = _bodies(rec, usage)
    fields = recovered.fields
    t0, t1, tf = parse_ts(start), parse_ts(end), parse_ts(first_token)
    if start is not None and t0 is None:
        raise RecordError("bad_timestamp", f"`startTime` {start!r} is not a timestamp")
    latency = as_float(rec.get("request_duration_ms"))
    if latency is None and t0 and t1:
        latency = (t1 - t0).total_seconds() * 1000
    status = as_str(rec.get("status"))
    failed = status is not None and status.lower() in ("failure", "error", "failed")
    meta = rec.get("metadata") if isinstance(rec.get("metadata"), dict) else {}
    # LiteLLM records a failure's provider status and class in metadata.error_information.
    err = meta.get("error_information") if isinstance(meta.get("error_information"), dict) else {}
    provider = as_str(rec.get("custom_llm_provider"))
    return make_row(
        fields,
        record=rec,
        request_id=as_str(request_id),
        ts=t0,
        provider=provider.lower() if provider else None,
        model=as_str(rec.get("model_group") or rec.get("model")) if not fields.get("model") else None,
        model_resolved=fields.get("model_resolved") or as_str(rec.get("model")),
        user_id=as_str(rec.get("end_user") or rec.get("user")),
        session_id=as_str(rec.get("session_id") or meta.get("session_id")),
        latency_ms=latency,
        ttft_ms=(tf - t0).total_seconds() * 1000 if (t0 and tf and tf > t0) else None,
        cost_reported_usd=as_float(spend),
        metadata_json=dumps(with_partial(
            {k: rec.get(k) for k in ("request_tags", "team_id", "api_key", "cache_hit", "metadata")
             if rec.get(k) not in (None, "", {}, [])}, recovered.partial)),
        finish_reason="error" if failed else None,
        error_type=(as_str(err.get("error_class")) or "error") if failed else None,
        error_message=bounded(as_str(rec.get("error_str") or err.get("error_message"))) if failed else None,
        status_code=as_int(err.get("error_code")) if failed else (
            200 if fields.get("response_id") or fields.get("response_text") else None),
        **usage,
    )


@record_format(
    "litellm_spend_log",
    "LiteLLM SpendLogs row (JSON or CSV): `request_id` + `call_type` + `spend`/`startTime`; cache tokens from `metadata.usage_object`",
    _is_spend_log,
    order=30,
)
def parse_spend_log(rec: Mapping[str, Any], ctx: Context) -> list[Row]:
    return [_row(rec, rec.get("request_id"), rec.get("startTime"), rec.get("endTime"), rec.get("completionStartTime"), rec.get("spend"))]


@record_format(
    "litellm_payload",
    "LiteLLM StandardLoggingPayload: `id` + `trace_id` + `call_type` + `response_cost` + `model_map_information`",
    _is_payload,
    order=30,
)
def parse_payload(rec: Mapping[str, Any], ctx: Context) -> list[Row]:
    return [_row(rec, rec.get("id"), rec.get("startTime"), rec.get("endTime"), rec.get("completionStartTime"), rec.get("response_cost"))]
