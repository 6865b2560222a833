"""Anthropic Messages bodies (formats.md §d) and the legacy Text Completions body.

Traps: `usage.input_tokens` EXCLUDES cache reads and writes (each is its own bucket); the 5m/1h
split of cache writes lives in `usage.cache_creation`; `tool_use.input` is an object, not a string.
"""

from __future__ import annotations

import re
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
    text_of,
    tool_call,
    tools_json,
)
from pipeline.ingest.bodies.openai_chat import has_anthropic_blocks
from pipeline.ingest.rows import RecordError, Row, as_str, dumps, get_path, usage_anthropic


def _is_anthropic(req: Body, resp: Body) -> bool:
    if resp is not None and resp.get("type") == "message" and "content" in resp:
        return True
    if resp is not None and resp.get("type") == "error" and isinstance(resp.get("error"), dict):
        return req is None or not isinstance(req.get("messages"), list) or "system" in req or "max_tokens" in req
    if req is not None and isinstance(req.get("messages"), list) and "max_tokens" in req:
        return "system" in req or has_anthropic_blocks(req["messages"]) or (
            resp is not None and "choices" not in resp
        ) or str(req.get("model", "")).startswith("claude")
    return False


def _ttl(cc: Any) -> str | None:
    if not isinstance(cc, dict):
        return None
    return as_str(cc.get("ttl")) or "5m"


def anthropic_request(req: Mapping[str, Any]) -> Row:
    msgs = req.get("messages")
    if not isinstance(msgs, list):
        raise RecordError("missing_field", "request has no `messages` list")
    breakpoints: list[dict] = []
    tools = []
    for i, t in enumerate(req.get("tools") or []):
        if not isinstance(t, dict):
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
            if isinstance(b, dict):
                if isinstance(b.get("text"), str):
                    texts.append(b["text"])
                if b.get("cache_control"):
                    breakpoints.append(
                        {"segment": "system", "index": i, "block": None, "ttl": _ttl(b["cache_control"])}
                    )
        system_text = "\n".join(texts) if texts else None
    out: list[dict] = []
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise RecordError("wrong_type", f"messages[{i}] is {type(m).__name__}, expected an object")
        role = m.get("role")
        if not isinstance(role, str):
            raise RecordError("missing_field", f"messages[{i}] has no `role`")
        if role in ("system", "developer") and not out:
            # Gateways (LiteLLM) send Claude requests in OpenAI shape: a leading system message.
            lead = text_of(m.get("content"))
            if lead:
                system_text = lead if system_text is None else f"{system_text}\n{lead}"
            continue
        out.extend(anthropic_message(role, m.get("content"), i, breakpoints))
    if isinstance(req.get("cache_control"), dict) and out:
        # Top-level automatic caching places the breakpoint on the last cacheable block.
        breakpoints.append(
            {"segment": "messages", "index": len(msgs) - 1, "block": None, "ttl": _ttl(req["cache_control"])}
        )
    meta = req.get("metadata") if isinstance(req.get("metadata"), dict) else {}
    return {
        "model": as_str(req.get("model")),
        "system_text": system_text,
        "messages": out,
        "tools_json": tools_json(tools),
        "cache_breakpoints": breakpoints or None,
        "request_params": params(req, {"messages", "tools", "system", "model", "metadata"}),
        "user_id": as_str(meta.get("user_id")),
        "is_stream": bool(req.get("stream")) if "stream" in req else None,
    }


def anthropic_message(role: str, content: Any, index: int, breakpoints: list[dict]) -> list[dict]:
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
        if not isinstance(b, dict):
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
        if not isinstance(b, dict):
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
        "finish_reason": finish(raw),
        "finish_reason_raw": as_str(raw),
        "service_tier": as_str(get_path(resp, "usage", "service_tier")),
        "status_code": 200,
        **usage,
    }


def _messages_response(resp: Mapping[str, Any]) -> Row:
    if "content" not in resp and isinstance(resp.get("completion"), str):
        return _text_completion_response(resp)  # Bedrock answered a Messages call in the legacy shape
    return anthropic_response(resp)


parse_anthropic = body_format(
    "anthropic_messages",
    "Anthropic Messages body: request `messages` + `max_tokens` (+ `system`), response `type: message`",
    _is_anthropic,
    order=30,
)(body_parser("messages", "anthropic", request=anthropic_request, response=_messages_response,
              is_error=lambda resp: resp.get("type") == "error" or ("error" in resp and "content" not in resp),
              model_from_response=True))


def _text_completion_response(resp: Mapping[str, Any]) -> Row:
    raw = resp.get("stop_reason")
    usage = resp.get("usage")
    return {
        "response_id": as_str(resp.get("id")),
        "model_resolved": as_str(resp.get("model")),
        "response_text": as_str(resp.get("completion")),
        "n_choices": 1,
        "finish_reason": finish(raw),
        "finish_reason_raw": as_str(raw),
        "status_code": 200,
        **(usage_anthropic(usage) if isinstance(usage, dict) else {}),
    }


def _is_anthropic_text_completion(req: Body, resp: Body) -> bool:
    if resp is not None:
        return isinstance(resp.get("completion"), str) and "stop_reason" in resp
    return req is not None and "max_tokens_to_sample" in req and isinstance(req.get("prompt"), str)


def _split_human_assistant(prompt: str) -> tuple[str | None, list[dict]]:
    """`"<system>\n\nHuman: …\n\nAssistant: …"` -> (system text, alternating messages)."""
    system, msgs = None, []
    parts = re.split(r"\n\n(Human|Assistant):", "\n\n" + prompt if not prompt.startswith("\n\n") else prompt)
    if parts and parts[0].strip():
        system = parts[0].strip()
    for role, text in zip(parts[1::2], parts[2::2], strict=False):
        text = text.strip()
        if role == "Assistant" and not text:
            continue  # the trailing "Assistant:" cue, not a message
        msgs.append(message("user" if role == "Human" else "assistant", text))
    return system, msgs


def _text_completion_request(req: Mapping[str, Any]) -> Row:
    system, msgs = _split_human_assistant(as_str(req.get("prompt")) or "")
    return {
        "model": as_str(req.get("model")),
        "system_text": system,
        "messages": msgs,
        "request_params": params(req, {"prompt", "model"}),
        "is_stream": bool(req.get("stream")) if "stream" in req else None,
    }


parse_anthropic_text_completion = body_format(
    "anthropic_text_completion",
    "legacy Anthropic Text Completions (also Claude v2 on Bedrock): request `prompt` `\\n\\nHuman:` + `max_tokens_to_sample`, response `completion` + `stop_reason`",
    _is_anthropic_text_completion,
    order=30,
)(body_parser("complete", "anthropic", request=_text_completion_request, response=_text_completion_response,
              is_error=error_unless("completion"), model_from_response=True))
