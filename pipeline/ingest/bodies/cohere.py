"""Cohere bodies: v2 `/chat`, v1 `/chat` and v1 `/generate` (the latter two also as Cohere Command
models on Bedrock InvokeModel).

Trap: Cohere reports three counts. `usage.tokens` is what the model processed, including Cohere's
own prompt template; `usage.billed_units` is what the customer pays for; `usage.cached_tokens`
falls inside the unbilled template (cohere-tool-call: billed input 119, processed 1549, cached 992 —
more cached than billed). So the buckets are the billed units, and `cached_tokens` stays in
`usage_raw` only: counting it would price tokens nobody is billed for.
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
    params,
    tool_call,
    tools_json,
)
from pipeline.ingest.bodies.openai_chat import openai_chat_request
from pipeline.ingest.rows import RecordError, Row, as_int, as_str, get_path, usage_buckets


def usage_cohere(usage: Any) -> Row:
    if not isinstance(usage, dict):
        return usage_buckets()
    billed = usage.get("billed_units") if isinstance(usage.get("billed_units"), dict) else None
    if billed is not None and ("input_tokens" in billed or "output_tokens" in billed):
        return usage_buckets(uncached=as_int(billed.get("input_tokens")), output=as_int(billed.get("output_tokens")), raw=usage)
    tokens = usage.get("tokens") if isinstance(usage.get("tokens"), dict) else {}
    total_in = as_int(tokens.get("input_tokens"))
    cached = as_int(usage.get("cached_tokens"))
    return usage_buckets(
        uncached=None if total_in is None else total_in - (cached or 0),
        cache_read=cached,
        output=as_int(tokens.get("output_tokens")),
        raw=usage,
    )


def _is_cohere_v2(req: Body, resp: Body) -> bool:
    if resp is not None:
        return isinstance(resp.get("message"), dict) and "finish_reason" in resp and "choices" not in resp
    return False


def _v2_request(req: Mapping[str, Any]) -> Row:
    try:  # v2 requests use OpenAI-style messages
        return openai_chat_request(req)
    except RecordError:
        return {}


def _v2_response(resp: Mapping[str, Any]) -> Row:
    msg = resp.get("message") or {}
    texts, thinking = [], []
    for p in msg.get("content") or []:
        if isinstance(p, dict):
            if p.get("type") == "text" and isinstance(p.get("text"), str):
                texts.append(p["text"])
            elif p.get("type") == "thinking" and isinstance(p.get("thinking"), str):
                thinking.append(p["thinking"])
    if msg.get("tool_plan"):
        thinking.append(as_str(msg["tool_plan"]) or "")
    calls = [
        tool_call(tc.get("id"), get_path(tc, "function", "name"), get_path(tc, "function", "arguments"), tc.get("type") or "function")
        for tc in msg.get("tool_calls") or []
        if isinstance(tc, dict)
    ]
    raw = resp.get("finish_reason")
    return dict(
        response_id=as_str(resp.get("id")),
        response_text="".join(texts) if texts else None,
        response_tool_calls=calls or None,
        response_reasoning="\n".join(thinking) if thinking else None,
        n_choices=1,
        finish_reason=finish(raw),
        finish_reason_raw=as_str(raw),
        status_code=200,
        **usage_cohere(resp.get("usage")),
    )


def _model_column(row: Row, req: Body, resp: Body) -> None:
    row["model"] = row.get("model")


parse_cohere_v2 = body_format(
    "cohere_chat_v2",
    "Cohere v2 /chat body: response `message{content[], tool_calls, tool_plan}` + `finish_reason` + `usage.billed_units`",
    _is_cohere_v2,
    order=45,
)(body_parser("chat", "cohere", request=_v2_request, response=_v2_response, then=_model_column))


def _is_cohere_v1_chat(req: Body, resp: Body) -> bool:
    if resp is not None:
        return isinstance(resp.get("text"), str) and ("generation_id" in resp or "response_id" in resp) and "choices" not in resp
    return req is not None and isinstance(req.get("message"), str) and ("chat_history" in req or "preamble" in req or "connectors" in req)


_V1_ROLES = {"USER": "user", "CHATBOT": "assistant", "SYSTEM": "system", "TOOL": "tool"}


def _v1_chat_request(req: Mapping[str, Any]) -> Row:
    msgs: list[dict[str, Any]] = []
    system = [as_str(req.get("preamble"))] if req.get("preamble") else []
    for m in req.get("chat_history") or []:
        if isinstance(m, dict):
            role = _V1_ROLES.get(str(m.get("role", "")).upper(), "user")
            text = as_str(m.get("message"))
            if role == "system" and not msgs:
                system.append(text or "")
            else:
                msgs.append(message(role, text))
    if req.get("message") is not None:
        msgs.append(message("user", as_str(req.get("message"))))
    tools = [{"name": t.get("name"), "description": t.get("description"), "parameters": t.get("parameter_definitions")}
             for t in req.get("tools") or [] if isinstance(t, dict)]
    return dict(model=as_str(req.get("model")), system_text="\n".join(s for s in system if s) or None, messages=msgs,
                tools_json=tools_json(tools), request_params=params(req, {"message", "chat_history", "preamble", "tools", "model"}),
                is_stream=bool(req.get("stream")) if "stream" in req else None)


def _v1_chat_response(resp: Mapping[str, Any]) -> Row:
    calls = [tool_call(None, tc.get("name"), tc.get("parameters")) for tc in resp.get("tool_calls") or [] if isinstance(tc, dict)]
    raw = resp.get("finish_reason")
    meta = resp.get("meta") if isinstance(resp.get("meta"), dict) else {}
    return dict(
        response_id=as_str(resp.get("response_id") or resp.get("generation_id")),
        response_text=as_str(resp.get("text")),
        response_tool_calls=calls or None,
        n_choices=1,
        finish_reason=finish(raw),
        finish_reason_raw=as_str(raw),
        status_code=200,
        **usage_cohere(meta),
    )


parse_cohere_v1_chat = body_format(
    "cohere_chat_v1",
    "Cohere v1 /chat body (also Command R on Bedrock): request `message` + `chat_history`, response `text` + `generation_id`",
    _is_cohere_v1_chat,
    order=45,
)(body_parser("chat", "cohere", request=_v1_chat_request, response=_v1_chat_response, is_error=error_unless("text")))


def _is_cohere_generate(req: Body, resp: Body) -> bool:
    if resp is not None:
        gens = resp.get("generations")
        return isinstance(gens, list) and bool(gens) and isinstance(gens[0], dict) and "text" in gens[0]
    return False


def _generate_request(req: Mapping[str, Any]) -> Row:
    prompt = as_str(req.get("prompt"))
    return dict(model=as_str(req.get("model")), messages=[message("user", prompt)] if prompt is not None else [],
                request_params=params(req, {"prompt", "model"}), is_stream=bool(req.get("stream")) if "stream" in req else None)


def _generate_response(resp: Mapping[str, Any]) -> Row:
    gens = [g for g in resp.get("generations") or [] if isinstance(g, dict)]
    first = gens[0] if gens else {}
    raw = first.get("finish_reason")
    meta = resp.get("meta") if isinstance(resp.get("meta"), dict) else {}
    return dict(
        response_id=as_str(resp.get("id")),
        response_text=as_str(first.get("text")),
        n_choices=len(gens),
        choices=[{"index": i, "text": as_str(g.get("text")), "tool_calls": None, "finish_reason": finish(g.get("finish_reason"))}
                 for i, g in enumerate(gens)] if len(gens) > 1 else None,
        finish_reason=finish(raw),
        finish_reason_raw=as_str(raw),
        status_code=200,
        **usage_cohere(meta),
    )


parse_cohere_generate = body_format(
    "cohere_generate",
    "Cohere v1 /generate body (also Command on Bedrock): request `prompt`, response `generations[].text`",
    _is_cohere_generate,
    order=45,
)(body_parser("generate", "cohere", request=_generate_request, response=_generate_response))
