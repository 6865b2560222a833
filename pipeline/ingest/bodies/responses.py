"""OpenAI Responses API bodies (formats.md §b), also served by Azure OpenAI, xAI and the
open-responses servers (LM Studio, …).

Traps: `usage.input_tokens` INCLUDES `input_tokens_details.cached_tokens` (and GPT-5.6+
`cache_write_tokens`); reasoning is inside `output_tokens`; with `previous_response_id` the logged
input is only this turn's delta (the chain is rebuilt in `formats.responses_chain`); the response
echoes `instructions`/`tools`, which stand in for a missing request body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.ingest.bodies import (
    Body,
    body_format,
    body_parser,
    error_unless,
    finish,
    message,
    other_parts,
    params,
    provider_from_model,
    text_of,
    tool_call,
    tools_json,
)
from pipeline.ingest.rows import Row, as_float, as_str, bounded, dumps, get_path, parse_ts, usage_openai

# Output items that are the model calling a tool (client-side or hosted); `*_output` items are results.
_CALL_ITEM_SUFFIX = "_call"
_RESULT_ITEM_SUFFIX = "_output"


def _is_responses(req: Body, resp: Body) -> bool:
    if resp is not None:
        if resp.get("object") == "response":
            return True
        return str(resp.get("id", "")).startswith("resp_") and isinstance(resp.get("output"), list)
    if req is None or "messages" in req or "contents" in req:
        return False
    if not ("input" in req or "instructions" in req or "previous_response_id" in req):
        return False
    return not str(req.get("model", "")).startswith(("gemini", "models/"))  # Gemini Interactions


def _item_call(item: Mapping[str, Any]) -> dict:
    itype = as_str(item.get("type")) or "function_call"
    if itype == "function_call":
        return tool_call(item.get("call_id") or item.get("id"), item.get("name"), item.get("arguments"))
    if itype == "custom_tool_call":
        return tool_call(item.get("call_id") or item.get("id"), item.get("name"), item.get("input"), "custom")
    # Hosted tools (web_search_call, code_interpreter_call, mcp_call, shell_call, …): keep what
    # the model asked for, under the item type as the tool name unless the item names one.
    args = {k: v for k, v in item.items() if k in ("action", "arguments", "input", "code", "queries", "server_label", "commands")}
    return tool_call(item.get("call_id") or item.get("id"), item.get("name") or itype.removesuffix(_CALL_ITEM_SUFFIX), args or None, itype)


def input_messages(items: Any) -> tuple[list[str], list[dict]]:
    """Responses `input` (a string or an item list) -> (system texts, normalized messages)."""
    if items is None:
        return [], []
    if isinstance(items, str):
        return [], [message("user", items)]
    if not isinstance(items, list):
        return [], [message("user", as_str(items))]
    system: list[str] = []
    out: list[dict] = []
    for item in items:
        add_input_item(system, out, item)
    return system, out


def add_input_item(system: list[str], out: list[dict], item: Any) -> None:
    """Append one input item to (system texts, messages). Messages already in `out` are never
    changed (a tool call joining the previous assistant message replaces it with a copy), so
    callers may share them between the prompts of successive calls."""
    if isinstance(item, str):
        out.append(message("user", item))
        return
    if not isinstance(item, dict):
        return
    itype = item.get("type")
    role = item.get("role")
    if itype in (None, "message") and isinstance(role, str):
        content = item.get("content")
        if role in ("system", "developer") and not out:
            t = text_of(content)
            if t is not None:
                system.append(t)
            return
        out.append(message(role, text_of(content), parts_json=other_parts(content)))
    elif isinstance(itype, str) and itype.endswith(_RESULT_ITEM_SUFFIX) or itype == "mcp_approval_response":
        result = item.get("output")
        text = result if isinstance(result, str) else text_of(result) if isinstance(result, list) else dumps(result)
        out.append(message("tool", text, tool_call_id=as_str(item.get("call_id") or item.get("approval_request_id"))))
    elif isinstance(itype, str) and (itype.endswith(_CALL_ITEM_SUFFIX) or itype == "mcp_approval_request"):
        call = _item_call(item)
        if out and out[-1]["role"] == "assistant" and out[-1]["content"] is None:
            out[-1] = {**out[-1], "tool_calls": [*(out[-1]["tool_calls"] or []), call]}
        else:
            out.append(message("assistant", None, tool_calls=[call]))
    # reasoning / item_reference / compaction items carry no prompt text we can use.


def _tools(tools: Any) -> str | None:
    out = []
    for t in tools or []:
        if not isinstance(t, dict):
            continue
        if t.get("type", "function") == "function" or "parameters" in t:
            out.append({"name": t.get("name"), "description": t.get("description"), "parameters": t.get("parameters")})
        else:  # hosted tool configs: web_search, file_search, mcp, shell, …
            out.append({"name": t.get("name") or t.get("server_label") or t.get("type"), "type": t.get("type")})
    return tools_json(out)


def _instructions(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return input_messages(value)[0] or [t for t in (text_of(m.get("content")) for m in value if isinstance(m, dict)) if t]
    return []


def responses_request(req: Mapping[str, Any]) -> Row:
    system, msgs = input_messages(req.get("input"))
    system = _instructions(req.get("instructions")) + system
    meta = req.get("metadata") if isinstance(req.get("metadata"), dict) else {}
    return {
        "model": as_str(req.get("model")),
        "system_text": "\n".join(system) if system else None,
        "messages": msgs,
        "tools_json": _tools(req.get("tools")),
        "request_params": params(req, {"input", "instructions", "tools", "model", "metadata", "user", "previous_response_id"}),
        "user_id": as_str(req.get("user") or req.get("safety_identifier") or meta.get("user_id")),
        "parent_id": as_str(req.get("previous_response_id")),
        "session_id": as_str(get_path(req, "conversation", "id") or req.get("conversation")),
        "is_stream": bool(req.get("stream")) if "stream" in req else None,
    }


def responses_response(resp: Mapping[str, Any]) -> Row:
    texts: list[str] = []
    refusals: list[str] = []
    reasoning: list[str] = []
    calls: list[dict] = []
    for item in resp.get("output") or []:
        if not isinstance(item, dict):
            continue
        itype = item.get("type")
        if itype == "message":
            for part in item.get("content") or []:
                if isinstance(part, dict):
                    if part.get("type") == "output_text" and isinstance(part.get("text"), str):
                        texts.append(part["text"])
                    elif part.get("type") == "refusal":
                        refusals.append(as_str(part.get("refusal")) or "")
        elif itype == "reasoning":
            for key in ("summary", "content"):
                for part in item.get(key) or []:
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        reasoning.append(part["text"])
        elif isinstance(itype, str) and (itype.endswith(_CALL_ITEM_SUFFIX) or itype == "mcp_approval_request"):
            calls.append(_item_call(item))
    status = as_str(resp.get("status"))
    incomplete = as_str(get_path(resp, "incomplete_details", "reason"))
    raw = incomplete or status
    norm = finish(incomplete) if incomplete else finish(status) if status in ("completed", "failed", "cancelled", "incomplete") else None
    if norm == "stop" and any(c["type"] in ("function", "custom") for c in calls):
        norm = "tool_calls"  # the client must run a tool and call again
    if refusals and not texts:
        norm = "refusal"
    created, completed = as_float(resp.get("created_at")), as_float(resp.get("completed_at"))
    row: Row = {
        "response_id": as_str(resp.get("id")),
        "model_resolved": as_str(resp.get("model")),
        "response_text": "".join(texts) if texts else ("".join(refusals) if refusals else None),
        "response_tool_calls": calls or None,
        "response_reasoning": "\n".join(reasoning) if reasoning else None,
        "n_choices": 1,
        "finish_reason": norm,
        "finish_reason_raw": raw,
        "service_tier": as_str(resp.get("service_tier")),
        "status_code": 200,
        # Server-side duration; the only latency a bare Responses body carries.
        "latency_ms": (completed - created) * 1000 if created and completed and completed >= created else None,
        "_created": parse_ts(resp.get("created_at")) if resp.get("created_at") is not None else None,
        **usage_openai(resp.get("usage")),
    }
    err = resp.get("error")
    if isinstance(err, dict) and (err.get("message") or err.get("code")):
        row.update(finish_reason="error", error_type=as_str(err.get("code") or err.get("type")) or "error",
                   error_message=bounded(as_str(err.get("message"))))
    return row


def _echoed_request(row: Row, req: Body, resp: Mapping[str, Any]) -> None:
    """Request fields the response echoes stand in when no request body was logged."""
    if req is None:
        system = _instructions(resp.get("instructions"))
        row.update(
            system_text="\n".join(system) if system else None,
            tools_json=_tools(resp.get("tools")),
            parent_id=as_str(resp.get("previous_response_id")),
            user_id=as_str(resp.get("user") or resp.get("safety_identifier")),
        )
    elif not row.get("parent_id"):
        row["parent_id"] = as_str(resp.get("previous_response_id"))


def _serving_provider(row: Row, req: Body, resp: Body) -> None:
    usage = (resp or {}).get("usage")
    xai = isinstance(usage, dict) and "num_server_side_tools_used" in usage
    row["provider"] = "xai" if xai else provider_from_model(row.get("model"), "openai")


parse_responses = body_format(
    "openai_responses",
    "OpenAI Responses body: request `input`/`instructions` (+ `previous_response_id`), response `object: response` + `output[]` items",
    _is_responses,
    order=10,
)(body_parser("responses", request=responses_request, response=responses_response, is_error=error_unless("output"),
              answered=_echoed_request, model_from_response=True, then=_serving_provider))
