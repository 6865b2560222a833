"""LangSmith run exports (bulk export / API `Run` objects, formats.md §h2). Only `run_type: llm`
runs are model calls; chain, tool, retriever, prompt and parser runs are skipped (chain runs
restate their children's token totals).

Inputs and outputs depend on the integration: OpenAI-wrapper runs hold OpenAI bodies
(`inputs.messages`, `outputs.choices`); LangChain chat models hold serialized messages
(`inputs.messages: [[{lc, type, kwargs: {content, type}}]]`, `outputs.generations[][]`).
Usage: LangChain `usage_metadata.input_tokens` is the sum of all input types (cache reads and
writes in `input_token_details` are subsets), and so are the run's `prompt_tokens`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.ingest.bodies import message, provider_from_model, tool_call
from pipeline.ingest.bodies.openai_chat import openai_chat_request, openai_chat_response
from pipeline.ingest.bodies.partial import missing_parts, with_partial
from pipeline.ingest.formats import Context, record_format
from pipeline.ingest.rows import (
    RecordError,
    Row,
    Skip,
    as_float,
    as_int,
    as_str,
    bounded,
    dumps,
    get_path,
    make_row,
    parse_ts,
    usage_buckets,
    usage_inclusive,
)

NAME = "langsmith_run"
_LC_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "function": "tool",
             "HumanMessage": "user", "AIMessage": "assistant", "SystemMessage": "system", "ToolMessage": "tool"}


def _is_run(rec: Mapping[str, Any]) -> bool:
    return "run_type" in rec and "trace_id" in rec and ("dotted_order" in rec or "inputs" in rec)


def _lc_message(m: Mapping[str, Any]) -> dict:
    kwargs = m.get("kwargs") if isinstance(m.get("kwargs"), dict) else m
    lc_id = m.get("id")
    # Serialized LangChain messages: {"lc": 1, "type": "constructor", "id": [..., "HumanMessage"], "kwargs": {"type": "human"}}
    kind = as_str(kwargs.get("type")) or (as_str(lc_id[-1]) if isinstance(lc_id, list) and lc_id else None) or (
        as_str(m.get("type")) if m.get("type") != "constructor" else None)
    role = as_str(m.get("role")) or _LC_ROLES.get(kind or "", "user")
    content = kwargs.get("content")
    text = content if isinstance(content, str) else "\n".join(
        p.get("text") for p in content or [] if isinstance(p, dict) and isinstance(p.get("text"), str)
    ) or None
    calls = [tool_call(c.get("id"), c.get("name"), c.get("args")) for c in kwargs.get("tool_calls") or [] if isinstance(c, dict)]
    return message(role, text, tool_calls=calls, tool_call_id=as_str(kwargs.get("tool_call_id")))


def _inputs(inputs: Any) -> Row:
    if not isinstance(inputs, dict):
        return {}
    msgs = inputs.get("messages")
    if isinstance(msgs, list) and msgs and isinstance(msgs[0], list):
        msgs = msgs[0]  # LangChain chat models: a batch of message lists
    if isinstance(msgs, list) and msgs and all(isinstance(m, dict) for m in msgs):
        if all("role" in m and "kwargs" not in m for m in msgs):
            try:
                fields = openai_chat_request({**inputs, "messages": msgs})
                return {k: fields[k] for k in ("system_text", "messages", "tools_json") if fields.get(k) is not None}
            except RecordError:
                pass
        converted = [_lc_message(m) for m in msgs]
        system = [m["content"] or "" for m in converted if m["role"] == "system"]
        return {"system_text": "\n".join(system) or None, "messages": [m for m in converted if m["role"] != "system"]}
    prompts = inputs.get("prompts") or inputs.get("prompt") or inputs.get("input")
    if isinstance(prompts, list):
        prompts = "\n".join(p for p in prompts if isinstance(p, str))
    return {"messages": [message("user", prompts if isinstance(prompts, str) else dumps(inputs))]}


def _usage_metadata(um: Any) -> Row:
    if not isinstance(um, dict):
        return usage_buckets()
    details = um.get("input_token_details") if isinstance(um.get("input_token_details"), dict) else {}
    out_details = um.get("output_token_details") if isinstance(um.get("output_token_details"), dict) else {}
    return usage_inclusive(
        total_input=as_int(um.get("input_tokens")),
        cache_read=as_int(details.get("cache_read")),
        cache_write=as_int(details.get("cache_creation")),
        output=as_int(um.get("output_tokens")),
        reasoning=as_int(out_details.get("reasoning")),
        raw=um,
    )


def _outputs(outputs: Any) -> Row:
    if not isinstance(outputs, dict):
        return {}
    if isinstance(outputs.get("choices"), list):
        fields = openai_chat_response(outputs)
        if fields.get("usage_missing") and isinstance(outputs.get("usage_metadata"), dict):
            fields.update(_usage_metadata(outputs["usage_metadata"]))
        return fields
    gens = outputs.get("generations")
    if isinstance(gens, list) and gens:
        first = gens[0][0] if isinstance(gens[0], list) and gens[0] else gens[0]
        first = first if isinstance(first, dict) else {}
        msg = first.get("message") if isinstance(first.get("message"), dict) else {}
        kwargs = msg.get("kwargs") if isinstance(msg.get("kwargs"), dict) else msg
        reply = _lc_message(msg) if msg else message("assistant", as_str(first.get("text")))
        meta = kwargs.get("response_metadata") if isinstance(kwargs.get("response_metadata"), dict) else {}
        raw = meta.get("finish_reason") or meta.get("stop_reason") or get_path(first, "generation_info", "finish_reason")
        fields = {
            "response_text": reply["content"] if reply["content"] is not None else as_str(first.get("text")),
            "response_tool_calls": reply["tool_calls"],
            "n_choices": 1,
            "finish_reason_raw": as_str(raw),
            "model_resolved": as_str(meta.get("model_name") or meta.get("model")),
            "response_id": as_str(kwargs.get("id")),
        }
        um = kwargs.get("usage_metadata") or outputs.get("usage_metadata")
        if isinstance(um, dict):
            fields.update(_usage_metadata(um))
        else:
            tu = get_path(outputs, "llm_output", "token_usage")
            if isinstance(tu, dict):
                fields.update(usage_inclusive(total_input=as_int(tu.get("prompt_tokens")), cache_read=None,
                                              output=as_int(tu.get("completion_tokens")), raw=tu))
        return fields
    if isinstance(outputs.get("usage_metadata"), dict):
        return _usage_metadata(outputs["usage_metadata"])
    return {}


@record_format(
    NAME,
    "LangSmith run export: `run_type` + `trace_id` + `dotted_order`/`inputs`; `run_type: llm` runs only",
    _is_run,
    order=30,
)
def parse_run(rec: Mapping[str, Any], ctx: Context) -> list[Row]:
    run_type = as_str(rec.get("run_type"))
    if run_type != "llm":
        raise Skip("not_an_llm_call", f"LangSmith `{run_type}` run")
    extra = rec.get("extra") if isinstance(rec.get("extra"), dict) else {}
    meta = extra.get("metadata") if isinstance(extra.get("metadata"), dict) else {}
    invocation = extra.get("invocation_params") if isinstance(extra.get("invocation_params"), dict) else {}
    fields: Row = {**_inputs(rec.get("inputs")), **_outputs(rec.get("outputs"))}
    if fields.get("usage_missing") is not False and rec.get("prompt_tokens") is not None:
        details = rec.get("prompt_token_details") if isinstance(rec.get("prompt_token_details"), dict) else {}
        fields.update(usage_inclusive(total_input=as_int(rec.get("prompt_tokens")), cache_read=as_int(details.get("cache_read")),
                                      cache_write=as_int(details.get("cache_creation")),
                                      output=as_int(rec.get("completion_tokens")),
                                      raw={k: rec.get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens", "prompt_token_details")}))
    start, end, first = parse_ts(rec.get("start_time")), parse_ts(rec.get("end_time")), parse_ts(rec.get("first_token_time"))
    model = as_str(meta.get("ls_model_name") or invocation.get("model") or invocation.get("model_name"))
    provider = as_str(meta.get("ls_provider"))
    failed = rec.get("status") == "error" or bool(rec.get("error"))
    raw_finish = fields.get("finish_reason_raw")
    norm = fields.get("finish_reason") or ({"stop": "stop", "end_turn": "stop", "length": "length", "max_tokens": "length",
                                           "tool_calls": "tool_calls", "tool_use": "tool_calls"}.get(str(raw_finish), "other") if raw_finish else None)
    info = {k: rec.get(k) for k in ("trace_id", "parent_run_id", "name", "session_id", "tags", "reference_example_id") if rec.get(k)}
    return [
        make_row(
            fields,
            record=rec,
            request_id=as_str(rec.get("id")),
            ts=start,
            provider=(provider or "").lower() or provider_from_model(model),
            endpoint="chat",
            model=model,
            user_id=as_str(meta.get("user_id")),
            # LangSmith's own `session_id` is the tracing PROJECT; conversations are metadata keys.
            session_id=as_str(meta.get("thread_id") or meta.get("session_id") or meta.get("conversation_id")),
            finish_reason="error" if failed else norm,
            error_type="error" if failed else None,
            error_message=bounded(as_str(rec.get("error"))) if failed else None,
            latency_ms=(end - start).total_seconds() * 1000 if start and end else None,
            ttft_ms=(first - start).total_seconds() * 1000 if start and first else None,
            cost_reported_usd=as_float(rec.get("total_cost")),
            feedback_json=dumps(rec.get("feedback_stats")) if isinstance(rec.get("feedback_stats"), dict) else None,
            metadata_json=dumps(with_partial(info, missing_parts({**fields, "finish_reason": "error" if failed else norm}))),
            source_format=NAME,
        )
    ]
