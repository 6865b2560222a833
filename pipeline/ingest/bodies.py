"""Provider request/response BODIES -> the content and usage columns of a row.

Many log formats wrap the same provider bodies (the envelope, batch files, gateway exports, HTTP
captures), so body parsing lives here, once, and wrappers call `parse_bodies(request, response)`.
A body format is registered with `@body_format`; the first whose `detect` accepts the pair wins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.ingest.rows import (
    RecordError,
    Row,
    as_int,
    as_str,
    bounded,
    dumps,
    get_path,
    normalize_finish,
    parse_ts,
    usage_anthropic,
    usage_openai,
)

Body = Mapping[str, Any] | None


@dataclass(frozen=True)
class BodyFormat:
    name: str
    detect: Callable[[Body, Body], bool]
    parse: Callable[[Body, Body], Row]
    description: str


BODY_FORMATS: list[BodyFormat] = []


def body_format(name: str, description: str, detect: Callable[[Body, Body], bool]):  # noqa: ANN201
    """Register a body parser; registration order is detection order."""

    def wrap(parse: Callable[[Body, Body], Row]) -> Callable[[Body, Body], Row]:
        BODY_FORMATS.append(BodyFormat(name, detect, parse, description))
        return parse

    return wrap


def detect_body(request: Body, response: Body) -> BodyFormat | None:
    for fmt in BODY_FORMATS:
        if fmt.detect(request, response):
            return fmt
    return None


def parse_bodies(request: Any, response: Any, *, hint: str | None = None) -> Row:
    """Parse a provider request/response pair (either may be None) into row columns.

    `hint` names a body format to use when shape detection is ambiguous (e.g. an endpoint path).
    Raises RecordError when neither body is a recognized provider format.
    """
    req = request if isinstance(request, Mapping) else None
    resp = response if isinstance(response, Mapping) else None
    if request is not None and req is None:
        raise RecordError("wrong_type", f"request body is {type(request).__name__}, expected an object")
    if response is not None and resp is None:
        raise RecordError("wrong_type", f"response body is {type(response).__name__}, expected an object")
    fmt = None
    if hint:
        fmt = next((f for f in BODY_FORMATS if f.name == hint), None)
    fmt = fmt or detect_body(req, resp)
    if fmt is None:
        keys = sorted({*(req or {}).keys(), *(resp or {}).keys()})[:12]
        raise RecordError("unknown_body_format", f"request/response bodies not recognized (keys: {', '.join(keys)})")
    return fmt.parse(req, resp)


def text_of(content: Any, text_types: Iterable[str] = ("text", "input_text", "output_text")) -> str | None:
    """Text of string-or-parts content; non-text parts are left to `other_parts`."""
    if content is None:
        return None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            p.get("text")
            for p in content
            if isinstance(p, Mapping) and p.get("type", "text") in text_types and isinstance(p.get("text"), str)
        ]
        texts += [p for p in content if isinstance(p, str)]
        return "\n".join(texts) if texts else None
    return as_str(content)


def other_parts(content: Any, text_types: Iterable[str] = ("text", "input_text", "output_text")) -> str | None:
    if not isinstance(content, list):
        return None
    rest = [p for p in content if isinstance(p, Mapping) and p.get("type", "text") not in text_types]
    return dumps(rest)


def message(
    role: str,
    content: str | None = None,
    *,
    parts_json: str | None = None,
    tool_calls: list[dict] | None = None,
    tool_call_id: str | None = None,
    name: str | None = None,
) -> dict:
    return {
        "role": role,
        "content": content,
        "parts_json": parts_json,
        "tool_calls": tool_calls or None,
        "tool_call_id": tool_call_id,
        "name": name,
    }


def tool_call(id_: Any, name: Any, arguments: Any, type_: str = "function") -> dict:
    args = arguments if isinstance(arguments, str) or arguments is None else dumps(arguments) or "{}"
    return {"id": as_str(id_), "type": type_, "name": as_str(name), "arguments": args}


def tools_json(tools: list[dict]) -> str | None:
    return dumps(tools) if tools else None


def _params(req: Mapping[str, Any], exclude: set[str]) -> str | None:
    return dumps({k: v for k, v in req.items() if k not in exclude})


# --- OpenAI Chat Completions ---------------------------------------------------------------


def _is_openai_chat(req: Body, resp: Body) -> bool:
    if resp is not None and resp.get("object") in ("chat.completion", "chat.completion.chunk"):
        return True
    if resp is not None and isinstance(resp.get("choices"), list) and "message" in str(resp.get("choices"))[:2000]:
        return True
    if req is not None and isinstance(req.get("messages"), list):
        if "system" in req or (resp is not None and resp.get("type") == "message"):
            return False
        return not (
            "max_tokens" in req and all(m.get("role") in ("user", "assistant") for m in req["messages"] if isinstance(m, Mapping))
            and _has_anthropic_blocks(req["messages"])
        )
    return False


def _has_anthropic_blocks(messages: list) -> bool:
    for m in messages:
        c = m.get("content") if isinstance(m, Mapping) else None
        if isinstance(c, list) and any(
            isinstance(b, Mapping) and b.get("type") in ("tool_use", "tool_result", "image", "document") for b in c
        ):
            return True
    return False


def openai_chat_request(req: Mapping[str, Any]) -> Row:
    msgs = req.get("messages")
    if not isinstance(msgs, list):
        raise RecordError("missing_field", "request has no `messages` list")
    system_parts: list[str] = []
    out: list[dict] = []
    for i, m in enumerate(msgs):
        if not isinstance(m, Mapping):
            raise RecordError("wrong_type", f"messages[{i}] is {type(m).__name__}, expected an object")
        role = m.get("role")
        if not isinstance(role, str):
            raise RecordError("missing_field", f"messages[{i}] has no `role`")
        content = m.get("content")
        if role in ("system", "developer") and not out:
            t = text_of(content)
            if t is not None:
                system_parts.append(t)
            continue
        calls = [
            tool_call(
                c.get("id"),
                get_path(c, "function", "name") or get_path(c, "custom", "name"),
                get_path(c, "function", "arguments") or get_path(c, "custom", "input"),
                c.get("type") or "function",
            )
            for c in (m.get("tool_calls") or [])
            if isinstance(c, Mapping)
        ]
        if isinstance(m.get("function_call"), Mapping):
            fc = m["function_call"]
            calls.append(tool_call(None, fc.get("name"), fc.get("arguments")))
        out.append(
            message(
                role,
                text_of(content),
                parts_json=other_parts(content),
                tool_calls=calls,
                tool_call_id=as_str(m.get("tool_call_id")),
                name=as_str(m.get("name")),
            )
        )
    tools = []
    for t in req.get("tools") or req.get("functions") or []:
        if not isinstance(t, Mapping):
            continue
        fn = t.get("function") if isinstance(t.get("function"), Mapping) else t
        tools.append(
            {"name": fn.get("name"), "description": fn.get("description"), "parameters": fn.get("parameters")}
        )
    meta = req.get("metadata") if isinstance(req.get("metadata"), Mapping) else None
    return {
        "model": as_str(req.get("model")),
        "system_text": "\n".join(system_parts) if system_parts else None,
        "messages": out,
        "tools_json": tools_json(tools),
        "request_params": _params(req, {"messages", "tools", "functions", "model", "metadata", "user"}),
        "user_id": as_str(req.get("user") or req.get("safety_identifier") or (meta or {}).get("user_id")),
        "is_stream": bool(req.get("stream")) if "stream" in req else None,
    }


def openai_chat_response(resp: Mapping[str, Any]) -> Row:
    choices = resp.get("choices")
    if not isinstance(choices, list):
        raise RecordError("missing_field", "response has no `choices` list")
    parsed = []
    for c in choices:
        if not isinstance(c, Mapping):
            continue
        msg = c.get("message") or {}
        text = text_of(msg.get("content")) if isinstance(msg, Mapping) else None
        if text is None and isinstance(c.get("text"), str):  # legacy completions
            text = c["text"]
        if text is None and isinstance(msg, Mapping) and msg.get("refusal"):
            text = msg["refusal"]
        calls = [
            tool_call(
                tc.get("id"),
                get_path(tc, "function", "name") or get_path(tc, "custom", "name"),
                get_path(tc, "function", "arguments") or get_path(tc, "custom", "input"),
                tc.get("type") or "function",
            )
            for tc in ((msg.get("tool_calls") if isinstance(msg, Mapping) else None) or [])
            if isinstance(tc, Mapping)
        ]
        raw_finish = c.get("finish_reason")
        finish = normalize_finish(raw_finish)
        if isinstance(msg, Mapping) and msg.get("refusal") and finish == "stop":
            finish = "refusal"
        parsed.append(
            {
                "index": idx if (idx := as_int(c.get("index"))) is not None else len(parsed),
                "text": text,
                "tool_calls": calls or None,
                "finish_reason": finish,
                "raw": raw_finish,
                "reasoning": msg.get("reasoning_content") or msg.get("reasoning") if isinstance(msg, Mapping) else None,
            }
        )
    parsed.sort(key=lambda c: c["index"])
    first = parsed[0] if parsed else None
    created = resp.get("created")
    return {
        "response_id": as_str(resp.get("id")),
        "model_resolved": as_str(resp.get("model")),
        "response_text": first["text"] if first else None,
        "response_tool_calls": first["tool_calls"] if first else None,
        "response_reasoning": as_str(first["reasoning"]) if first else None,
        "n_choices": len(parsed),
        "choices": (
            [{k: c[k] for k in ("index", "text", "tool_calls", "finish_reason")} for c in parsed]
            if len(parsed) > 1
            else None
        ),
        "finish_reason": first["finish_reason"] if first else None,
        "finish_reason_raw": as_str(first["raw"]) if first else None,
        "service_tier": as_str(resp.get("service_tier")),
        "_created": parse_ts(created) if created is not None else None,
        **usage_openai(resp.get("usage")),
    }


def _provider_from_model(model: str | None, default: str) -> str:
    m = (model or "").lower()
    for prefix, provider in (
        ("claude", "anthropic"),
        ("gpt-", "openai"),
        ("o1", "openai"),
        ("o3", "openai"),
        ("o4", "openai"),
        ("chatgpt", "openai"),
        ("deepseek", "deepseek"),
        ("grok", "xai"),
        ("gemini", "google"),
        ("mistral", "mistral"),
        ("llama", "meta"),
        ("command", "cohere"),
    ):
        if m.startswith(prefix):
            return provider
    return default


@body_format("openai_chat", "OpenAI Chat Completions body: request `messages` + `model`, response `choices[]`", _is_openai_chat)
def parse_openai_chat(req: Body, resp: Body) -> Row:
    row: Row = {"endpoint": "chat.completions"}
    if req is not None:
        row.update(openai_chat_request(req))
    if resp is not None:
        if "error" in resp and "choices" not in resp:
            row.update(error_body(resp))
        else:
            row.update(openai_chat_response(resp))
            row["status_code"] = 200
    row["model"] = row.get("model") or row.get("model_resolved")
    row["provider"] = _provider_from_model(row.get("model"), "openai")
    return row


def error_body(resp: Mapping[str, Any]) -> Row:
    """`{error: {type, code, message}}` (OpenAI) / `{type: "error", error: {...}}` (Anthropic)."""
    err = resp.get("error")
    if isinstance(err, Mapping):
        etype = err.get("type") or err.get("code") or err.get("status")
        msg = err.get("message")
    else:
        etype, msg = resp.get("type"), err
    return {
        "finish_reason": "error",
        "error_type": as_str(etype) or "error",
        "error_message": bounded(as_str(msg)),
        "response_id": as_str(resp.get("request_id")),
    }


# --- Anthropic Messages ----------------------------------------------------------------------


def _is_anthropic(req: Body, resp: Body) -> bool:
    if resp is not None and resp.get("type") == "message" and "content" in resp:
        return True
    if resp is not None and resp.get("type") == "error" and isinstance(resp.get("error"), Mapping):
        return req is None or not isinstance(req.get("messages"), list) or "system" in req or "max_tokens" in req
    if req is not None and isinstance(req.get("messages"), list) and "max_tokens" in req:
        return "system" in req or _has_anthropic_blocks(req["messages"]) or (
            resp is not None and "choices" not in resp
        ) or str(req.get("model", "")).startswith("claude")
    return False


def _ttl(cc: Any) -> str | None:
    if not isinstance(cc, Mapping):
        return None
    return as_str(cc.get("ttl")) or "5m"


def anthropic_request(req: Mapping[str, Any]) -> Row:
    msgs = req.get("messages")
    if not isinstance(msgs, list):
        raise RecordError("missing_field", "request has no `messages` list")
    breakpoints: list[dict] = []
    tools = []
    for i, t in enumerate(req.get("tools") or []):
        if not isinstance(t, Mapping):
            continue
        tools.append(
            {
                "name": t.get("name"),
                "description": t.get("description"),
                "parameters": t.get("input_schema"),
                **({"type": t["type"]} if t.get("type") and t.get("type") != "custom" else {}),
            }
        )
        if t.get("cache_control"):
            breakpoints.append({"segment": "tools", "index": i, "block": None, "ttl": _ttl(t["cache_control"])})
    system = req.get("system")
    system_text = None
    if isinstance(system, str):
        system_text = system
    elif isinstance(system, list):
        texts = []
        for i, b in enumerate(system):
            if isinstance(b, Mapping):
                if isinstance(b.get("text"), str):
                    texts.append(b["text"])
                if b.get("cache_control"):
                    breakpoints.append(
                        {"segment": "system", "index": i, "block": None, "ttl": _ttl(b["cache_control"])}
                    )
        system_text = "\n".join(texts) if texts else None
    out: list[dict] = []
    for i, m in enumerate(msgs):
        if not isinstance(m, Mapping):
            raise RecordError("wrong_type", f"messages[{i}] is {type(m).__name__}, expected an object")
        role = m.get("role")
        if not isinstance(role, str):
            raise RecordError("missing_field", f"messages[{i}] has no `role`")
        out.extend(_anthropic_message(role, m.get("content"), i, breakpoints))
    if isinstance(req.get("cache_control"), Mapping) and out:
        # Top-level automatic caching places the breakpoint on the last cacheable block.
        breakpoints.append(
            {"segment": "messages", "index": len(msgs) - 1, "block": None, "ttl": _ttl(req["cache_control"])}
        )
    meta = req.get("metadata") if isinstance(req.get("metadata"), Mapping) else {}
    return {
        "model": as_str(req.get("model")),
        "system_text": system_text,
        "messages": out,
        "tools_json": tools_json(tools),
        "cache_breakpoints": breakpoints or None,
        "request_params": _params(req, {"messages", "tools", "system", "model", "metadata"}),
        "user_id": as_str(meta.get("user_id")),
        "is_stream": bool(req.get("stream")) if "stream" in req else None,
    }


def _anthropic_message(role: str, content: Any, index: int, breakpoints: list[dict]) -> list[dict]:
    """One Anthropic message -> one normalized message, plus a role=tool message per tool_result."""
    if isinstance(content, str) or content is None:
        return [message(role, content)]
    if not isinstance(content, list):
        raise RecordError("wrong_type", f"messages[{index}].content is {type(content).__name__}")
    texts: list[str] = []
    calls: list[dict] = []
    rest: list[Any] = []
    results: list[dict] = []
    for j, b in enumerate(content):
        if not isinstance(b, Mapping):
            rest.append(b)
            continue
        if b.get("cache_control"):
            breakpoints.append({"segment": "messages", "index": index, "block": j, "ttl": _ttl(b["cache_control"])})
        btype = b.get("type")
        if btype == "text":
            texts.append(as_str(b.get("text")) or "")
        elif btype in ("tool_use", "server_tool_use"):
            calls.append(tool_call(b.get("id"), b.get("name"), b.get("input"), btype))
        elif btype == "tool_result":
            results.append(
                message(
                    "tool",
                    text_of(b.get("content")),
                    parts_json=other_parts(b.get("content")),
                    tool_call_id=as_str(b.get("tool_use_id")),
                )
            )
        else:
            rest.append(b)
    msgs = []
    if texts or calls or rest or not results:
        msgs.append(
            message(role, "\n".join(texts) if texts else None, parts_json=dumps(rest), tool_calls=calls)
        )
    return results + msgs if role == "user" else msgs + results


def anthropic_response(resp: Mapping[str, Any]) -> Row:
    content = resp.get("content")
    if not isinstance(content, list):
        raise RecordError("missing_field", "response has no `content` list")
    texts, calls, thinking = [], [], []
    for b in content:
        if not isinstance(b, Mapping):
            continue
        if b.get("type") == "text":
            texts.append(as_str(b.get("text")) or "")
        elif b.get("type") in ("tool_use", "server_tool_use"):
            calls.append(tool_call(b.get("id"), b.get("name"), b.get("input"), b["type"]))
        elif b.get("type") == "thinking":
            thinking.append(as_str(b.get("thinking")) or "")
    raw = resp.get("stop_reason")
    usage = usage_anthropic(resp.get("usage"))
    return {
        "response_id": as_str(resp.get("id")),
        "model_resolved": as_str(resp.get("model")),
        "response_text": "".join(texts) if texts else None,
        "response_tool_calls": calls or None,
        "response_reasoning": "\n".join(thinking) if thinking else None,
        "n_choices": 1,
        "finish_reason": normalize_finish(raw),
        "finish_reason_raw": as_str(raw),
        "service_tier": as_str(get_path(resp, "usage", "service_tier")),
        "status_code": 200,
        **usage,
    }


@body_format("anthropic_messages", "Anthropic Messages body: request `messages` + `max_tokens` (+ `system`), response `type: message`", _is_anthropic)
def parse_anthropic(req: Body, resp: Body) -> Row:
    row: Row = {"endpoint": "messages", "provider": "anthropic"}
    if req is not None:
        row.update(anthropic_request(req))
    if resp is not None:
        if resp.get("type") == "error" or ("error" in resp and "content" not in resp):
            row.update(error_body(resp))
        else:
            row.update(anthropic_response(resp))
    row["model"] = row.get("model") or row.get("model_resolved")
    return row
