"""OpenAI Chat Completions and legacy Completions bodies (formats.md §a), including the
OpenAI-compatible providers that reuse the shape (DeepSeek, Groq, xAI, Mistral, Perplexity, Qwen,
Together, Azure, …), told apart by their usage keys and model names.

Traps: `prompt_tokens` INCLUDES cached tokens (DeepSeek: hit + miss = prompt); xAI reports
reasoning tokens OUTSIDE `completion_tokens` (total = prompt + completion + reasoning), everyone
else inside; Groq streams put usage under `x_groq.usage`.
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
from pipeline.ingest.rows import RecordError, Row, as_float, as_int, as_str, get_path, parse_ts, usage_openai


def _is_openai_chat(req: Body, resp: Body) -> bool:
    if resp is not None and resp.get("object") in ("chat.completion", "chat.completion.chunk"):
        return True
    if resp is not None and isinstance(resp.get("choices"), list) and any(
        isinstance(c, dict) and ("message" in c or "delta" in c) for c in resp["choices"]
    ):
        return True
    if req is not None and isinstance(req.get("messages"), list):
        if "system" in req or (resp is not None and resp.get("type") == "message"):
            return False
        return not (
            "max_tokens" in req
            and all(m.get("role") in ("user", "assistant") for m in req["messages"] if isinstance(m, dict))
            and has_anthropic_blocks(req["messages"])
        )
    return False


def _is_openai_completion(req: Body, resp: Body) -> bool:
    if resp is not None:
        if resp.get("object") == "text_completion":
            return True
        choices = resp.get("choices")
        if isinstance(choices, list) and choices and all(
            isinstance(c, dict) and "text" in c and "message" not in c for c in choices
        ):
            return "generations" not in resp
    return (
        req is not None
        and isinstance(req.get("prompt"), str | list)
        and "model" in req
        and "messages" not in req
        and (resp is None or "choices" in resp)
    )


def has_anthropic_blocks(messages: list) -> bool:
    for m in messages:
        c = m.get("content") if isinstance(m, dict) else None
        if isinstance(c, list) and any(
            isinstance(b, dict) and b.get("type") in ("tool_use", "tool_result", "image", "document") for b in c
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
        if not isinstance(m, dict):
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
            if isinstance(c, dict)
        ]
        if isinstance(m.get("function_call"), dict):
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
        if not isinstance(t, dict):
            continue
        function = t.get("function")  # type: ignore[attr-defined]  # mypy: `t` from an untyped JSON list
        fn: Mapping[str, Any] = function if isinstance(function, dict) else t
        tools.append({"name": fn.get("name"), "description": fn.get("description"), "parameters": fn.get("parameters")})
    meta = req.get("metadata") if isinstance(req.get("metadata"), dict) else None
    return {
        "model": as_str(req.get("model")),
        "system_text": "\n".join(system_parts) if system_parts else None,
        "messages": out,
        "tools_json": tools_json(tools),
        "request_params": params(req, {"messages", "tools", "functions", "model", "metadata", "user"}),
        "user_id": as_str(req.get("user") or req.get("safety_identifier") or (meta or {}).get("user_id")),
        "is_stream": bool(req.get("stream")) if "stream" in req else None,
    }


def _choice(c: Mapping[str, Any], position: int) -> dict:
    msg = c.get("message") or {}
    msg = msg if isinstance(msg, dict) else {}
    text = text_of(msg.get("content"))
    if text is None and isinstance(c.get("text"), str):  # legacy completions
        text = c["text"]
    if text is None and msg.get("refusal"):
        text = msg["refusal"]
    calls = [
        tool_call(
            tc.get("id"),
            get_path(tc, "function", "name") or get_path(tc, "custom", "name"),
            get_path(tc, "function", "arguments") or get_path(tc, "custom", "input"),
            tc.get("type") or "function",
        )
        for tc in (msg.get("tool_calls") or [])
        if isinstance(tc, dict)
    ]
    if isinstance(msg.get("function_call"), dict):
        fc = msg["function_call"]
        calls.append(tool_call(None, fc.get("name"), fc.get("arguments")))
    raw_finish = c.get("finish_reason")
    norm = finish(raw_finish)
    if msg.get("refusal") and norm == "stop":
        norm = "refusal"
    idx = as_int(c.get("index"))
    return {
        "index": idx if idx is not None else position,
        "text": text,
        "tool_calls": calls or None,
        "finish_reason": norm,
        "raw": raw_finish,
        "reasoning": msg.get("reasoning_content") or msg.get("reasoning"),
    }


def usage_openai_compatible(usage: Any) -> Row:
    """`usage_openai`, corrected for providers that count reasoning outside `completion_tokens`.

    xAI reports total = prompt + completion + reasoning (e.g. 12 + 2 + 320 = 334), so its
    output is completion + reasoning; OpenAI/DeepSeek/Qwen count reasoning inside completion.
    """
    row = usage_openai(usage)
    if not isinstance(usage, dict):
        return row
    prompt, completion, total = (as_int(usage.get(k)) for k in ("prompt_tokens", "completion_tokens", "total_tokens"))
    reasoning = row.get("out_reasoning")
    known = None not in (prompt, completion, total, reasoning)
    if known and reasoning and total != prompt + completion and total == prompt + completion + reasoning:
        row["out_total"] = completion + reasoning
    return row


def _provider(resp: Mapping[str, Any], model: str | None) -> str:
    usage = resp.get("usage") if isinstance(resp.get("usage"), dict) else {}
    if "x_groq" in resp or "queue_time" in usage:
        return "groq"
    if "prompt_cache_hit_tokens" in usage:
        return "deepseek"
    if "cost_in_usd_ticks" in usage or "num_sources_used" in usage:
        return "xai"
    if "audio_prompt_tokens" in usage:
        return "azure"  # Azure AI Foundry models served through the OpenAI-compatible API
    if "citations" in resp or "search_results" in resp:
        return provider_from_model(model, "perplexity") or "perplexity"
    return provider_from_model(model, "openai") or "openai"


def openai_chat_response(resp: Mapping[str, Any]) -> Row:
    choices = resp.get("choices")
    if not isinstance(choices, list):
        raise RecordError("missing_field", "response has no `choices` list")
    parsed = [_choice(c, i) for i, c in enumerate(choices) if isinstance(c, dict)]
    parsed.sort(key=lambda c: c["index"])
    first = parsed[0] if parsed else None
    created = resp.get("created")
    usage = resp.get("usage")
    if usage is None and isinstance(get_path(resp, "x_groq", "usage"), dict):
        usage = resp["x_groq"]["usage"]
    ticks = as_float(get_path(usage, "cost_in_usd_ticks")) if isinstance(usage, dict) else None
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
        # xAI bills in "ticks" of 1e-10 USD (grok-3-mini: 12 in + 322 out tokens = 1_641_500 ticks).
        "cost_reported_usd": ticks / 1e10 if ticks is not None else None,
        "_created": parse_ts(created) if created is not None else None,
        **usage_openai_compatible(usage),
    }


def _answer(resp: Mapping[str, Any]) -> Row:
    return {**openai_chat_response(resp), "status_code": 200}


def _serving_provider(row: Row, req: Body, resp: Body) -> None:
    row["provider"] = _provider(resp or {}, row.get("model") or row.get("model_resolved"))


def _completion_request(req: Mapping[str, Any]) -> Row:
    prompt = req.get("prompt")
    text = prompt if isinstance(prompt, str) else "\n".join(p for p in prompt or [] if isinstance(p, str)) or None
    return {
        "model": as_str(req.get("model")),
        "messages": [message("user", text)] if text is not None else [],
        "request_params": params(req, {"prompt", "model", "user"}),
        "user_id": as_str(req.get("user")),
        "is_stream": bool(req.get("stream")) if "stream" in req else None,
    }


parse_openai_chat = body_format(
    "openai_chat",
    "OpenAI Chat Completions body (and compatible providers): request `messages` + `model`, response `choices[].message`",
    _is_openai_chat,
    order=80,
)(body_parser("chat.completions", request=openai_chat_request, response=_answer, is_error=error_unless("choices"),
              model_from_response=True, then=_serving_provider))

parse_openai_completion = body_format(
    "openai_completions",
    "legacy Completions body: request `prompt` + `model`, response `object: text_completion` / `choices[].text`",
    _is_openai_completion,
    order=70,
)(body_parser("completions", request=_completion_request, response=_answer, is_error=error_unless("choices"),
              model_from_response=True, then=_serving_provider))
