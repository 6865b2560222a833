"""UK AISI inspect_ai eval logs (`.json` format): one record per log file holding samples whose
`events` include `model` events; each model event is one API call and becomes a row.

A model event's `call.request` / `call.response` are the raw provider bodies (parsed with the body
formats), with long strings replaced by `attachment://<hash>` references into the sample's
`attachments`, resolved here. Events without `call` fall back to inspect's own normalized
`input` / `output` (ChatMessages and ModelOutput).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.ingest.bodies import message, parse_bodies, provider_from_model, tool_call
from pipeline.ingest.formats import Context, record_format
from pipeline.ingest.rows import (
    RecordError,
    Row,
    Skip,
    as_float,
    as_int,
    as_str,
    dumps,
    make_row,
    parse_ts,
    usage_buckets,
    usage_inclusive,
)

NAME = "inspect_eval_log"
_ATTACHMENT = "attachment://"


def _is_inspect(rec: Mapping[str, Any]) -> bool:
    return isinstance(rec.get("eval"), dict) and ("samples" in rec or "results" in rec) and "version" in rec


def _resolve(value: Any, attachments: Mapping[str, Any]) -> Any:
    if isinstance(value, str) and value.startswith(_ATTACHMENT):
        return attachments.get(value[len(_ATTACHMENT):], value)
    if isinstance(value, list):
        return [_resolve(v, attachments) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, attachments) for k, v in value.items()}
    return value


def _inspect_usage(u: Any) -> Row:
    """inspect's ModelUsage. Its `input_tokens` follows the provider: inclusive of cache reads for
    OpenAI-style APIs, exclusive for Anthropic; `total_tokens` tells which."""
    if not isinstance(u, dict):
        return usage_buckets()
    inp, out = as_int(u.get("input_tokens")), as_int(u.get("output_tokens"))
    read, write = as_int(u.get("input_tokens_cache_read")), as_int(u.get("input_tokens_cache_write"))
    total, reasoning = as_int(u.get("total_tokens")), as_int(u.get("reasoning_tokens"))
    exclusive = None not in (inp, out, total) and (read or write) and total == inp + out + (read or 0) + (write or 0)
    if exclusive:
        return usage_buckets(uncached=inp, cache_read=read, write_unspecified=write, output=out, reasoning=reasoning, raw=u)
    return usage_inclusive(total_input=inp, cache_read=read, cache_write=write, output=out, reasoning=reasoning, raw=u)


def _fallback_fields(event: Mapping[str, Any]) -> Row:
    system: list[str] = []
    msgs: list[dict[str, Any]] = []
    for m in event.get("input") or []:
        if not isinstance(m, dict):
            continue
        content = m.get("content")
        text = content if isinstance(content, str) else "\n".join(
            p.get("text") for p in content or [] if isinstance(p, dict) and isinstance(p.get("text"), str)
        ) or None
        if m.get("role") == "system" and not msgs:
            system.append(text or "")
            continue
        calls = [tool_call(c.get("id"), c.get("function"), c.get("arguments")) for c in m.get("tool_calls") or [] if isinstance(c, dict)]
        msgs.append(message(as_str(m.get("role")) or "user", text, tool_calls=calls, tool_call_id=as_str(m.get("tool_call_id"))))
    output = event.get("output") if isinstance(event.get("output"), dict) else {}
    choice = (output.get("choices") or [{}])[0]
    reply = choice.get("message") if isinstance(choice, dict) and isinstance(choice.get("message"), dict) else {}
    content = reply.get("content")
    text = content if isinstance(content, str) else "\n".join(
        p.get("text") for p in content or [] if isinstance(p, dict) and isinstance(p.get("text"), str)
    ) or None
    calls = [tool_call(c.get("id"), c.get("function"), c.get("arguments")) for c in reply.get("tool_calls") or [] if isinstance(c, dict)]
    raw = choice.get("stop_reason") if isinstance(choice, dict) else None
    return {
        "system_text": "\n".join(system) or None,
        "messages": msgs,
        "model_resolved": as_str(output.get("model")),
        "response_text": text,
        "response_tool_calls": calls or None,
        "n_choices": len(output.get("choices") or []),
        "finish_reason": {"stop": "stop", "max_tokens": "length", "model_length": "length", "tool_calls": "tool_calls",
                          "content_filter": "content_filter"}.get(str(raw), "other") if raw else None,
        "finish_reason_raw": as_str(raw),
        **_inspect_usage(output.get("usage")),
    }


@record_format(
    NAME,
    "inspect_ai eval log (`eval` + `samples[].events[]`): one row per `model` event, raw API request/response from `call`",
    _is_inspect,
    order=10,
)
def parse_eval_log(rec: Mapping[str, Any], ctx: Context) -> list[Row]:
    ev = rec["eval"]
    eval_model = as_str(ev.get("model"))
    run = as_str(ev.get("run_id") or ev.get("eval_id"))
    rows: list[Row] = []
    for sample in rec.get("samples") or []:
        if not isinstance(sample, dict):
            continue
        attachments = sample.get("attachments") if isinstance(sample.get("attachments"), dict) else {}
        models = [e for e in sample.get("events") or [] if isinstance(e, dict) and e.get("event") == "model"]
        for n, event in enumerate(models, start=1):
            label = f"sample {sample.get('id')} epoch {sample.get('epoch')} model event {n}"
            call = event.get("call") if isinstance(event.get("call"), dict) else None
            try:
                if call and isinstance(call.get("request"), dict):
                    fields = parse_bodies(_resolve(call["request"], attachments), _resolve(call.get("response"), attachments))
                else:
                    fields = _fallback_fields(_resolve(event, attachments))
            except RecordError as e:
                ctx.skip_item(e.reason, f"{label}: {e.detail}")
                continue
            model = as_str(event.get("model")) or eval_model
            seconds = as_float((call or {}).get("time")) or as_float(get_time(event))
            err = event.get("error")
            rows.append(
                make_row(
                    fields,
                    record=[ctx.source_file, run, sample.get("id"), sample.get("epoch"), n],
                    ts=parse_ts(event.get("timestamp")),
                    provider=provider_from_model(model),
                    model=model.split("/", 1)[1] if model and "/" in model and not fields.get("model") else None,
                    session_id=f"{run}:{sample.get('id')}:{sample.get('epoch')}" if run else None,
                    latency_ms=seconds * 1000 if seconds is not None else None,
                    finish_reason="error" if err else None,
                    error_message=as_str(err) if err else None,
                    metadata_json=dumps({"task": ev.get("task"), "eval_id": ev.get("eval_id"), "run_id": ev.get("run_id"),
                                         "sample_id": sample.get("id"), "epoch": sample.get("epoch"), "model_event": n}),
                    source_format=NAME,
                )
            )
    if not rows:
        raise Skip("no_llm_calls", "eval log without model events (header-only log, or no samples)")
    return rows


def get_time(event: Mapping[str, Any]) -> Any:
    output = event.get("output")
    return output.get("time") if isinstance(output, dict) else None
