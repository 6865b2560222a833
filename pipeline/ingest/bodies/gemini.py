"""Google Gemini bodies: `generateContent` (and each chunk of `streamGenerateContent`) and the
Interactions API (`object: interaction`).

Traps: `promptTokenCount` INCLUDES `cachedContentTokenCount`; `thoughtsTokenCount` is NOT inside
`candidatesTokenCount` (totalTokenCount = prompt + candidates + thoughts + toolUsePrompt), so
output = candidates + thoughts; `toolUsePromptTokenCount` (tool results fed back) is input.
Interactions usage follows the same split: total = input + output + thought + tool_use.
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
from pipeline.ingest.rows import Row, as_int, as_str, dumps, get_path, parse_ts, usage_buckets


def _is_generate_content(req: Body, resp: Body) -> bool:
    if resp is not None:
        if isinstance(resp.get("candidates"), list) or "usageMetadata" in resp:
            return True
        return "promptFeedback" in resp
    return req is not None and isinstance(req.get("contents"), list | dict)


def _is_interaction(req: Body, resp: Body) -> bool:
    if resp is not None:
        return resp.get("object") == "interaction" or (isinstance(resp.get("steps"), list) and "usage" in resp)
    return req is not None and "input" in req and str(req.get("model", "")).startswith(("gemini", "models/"))


def usage_gemini(um: Any) -> Row:
    if not isinstance(um, dict):
        return usage_buckets()
    prompt = as_int(um.get("promptTokenCount"))
    tool_use = as_int(um.get("toolUsePromptTokenCount")) or 0
    cached = as_int(um.get("cachedContentTokenCount"))
    candidates = as_int(um.get("candidatesTokenCount"))
    thoughts = as_int(um.get("thoughtsTokenCount"))
    uncached = None if prompt is None else prompt + tool_use - (cached or 0)
    output = None if candidates is None and thoughts is None else (candidates or 0) + (thoughts or 0)
    return usage_buckets(uncached=uncached, cache_read=cached, output=output, reasoning=thoughts, raw=um)


def usage_interactions(u: Any) -> Row:
    if not isinstance(u, dict):
        return usage_buckets()
    total_in = as_int(u.get("total_input_tokens"))
    tool_use = as_int(u.get("total_tool_use_tokens")) or 0
    cached = as_int(u.get("total_cached_tokens"))
    out = as_int(u.get("total_output_tokens"))
    thoughts = as_int(u.get("total_thought_tokens"))
    uncached = None if total_in is None else total_in + tool_use - (cached or 0)
    output = None if out is None and thoughts is None else (out or 0) + (thoughts or 0)
    return usage_buckets(uncached=uncached, cache_read=cached, output=output, reasoning=thoughts, raw=u)


def _parts(parts: Any) -> tuple[list[str], list[str], list[dict], list[Any]]:
    """Gemini parts -> (texts, thought texts, tool calls, other parts)."""
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict] = []
    rest: list[Any] = []
    for p in parts or []:
        if not isinstance(p, dict):
            continue
        if isinstance(p.get("text"), str):
            (thoughts if p.get("thought") else texts).append(p["text"])
        elif isinstance(p.get("functionCall"), dict):
            fc = p["functionCall"]
            calls.append(tool_call(fc.get("id"), fc.get("name"), fc.get("args")))
        elif isinstance(p.get("executableCode"), dict):
            calls.append(tool_call(None, "code_execution", p["executableCode"], "code_execution"))
        else:
            rest.append({k: v for k, v in p.items() if k != "thoughtSignature"} or None)
    return texts, thoughts, calls, [r for r in rest if r]


def _content_messages(contents: Any) -> list[dict]:
    if isinstance(contents, dict):
        contents = [contents]
    out = []
    for c in contents or []:
        if isinstance(c, str):
            out.append(message("user", c))
            continue
        if not isinstance(c, dict):
            continue
        role = "assistant" if c.get("role") == "model" else as_str(c.get("role")) or "user"
        texts, _, calls, rest = _parts(c.get("parts"))
        responses = [p["functionResponse"] for p in c.get("parts") or [] if isinstance(p, dict) and isinstance(p.get("functionResponse"), dict)]
        for fr in responses:
            out.append(message("tool", dumps(fr.get("response")), tool_call_id=as_str(fr.get("id")), name=as_str(fr.get("name"))))
        rest = [r for r in rest if "functionResponse" not in r]
        if texts or calls or rest or not responses:
            out.append(message(role, "\n".join(texts) if texts else None, parts_json=dumps(rest), tool_calls=calls))
    return out


def _system(instruction: Any) -> str | None:
    if isinstance(instruction, str):
        return instruction
    if isinstance(instruction, dict):
        texts = _parts(instruction.get("parts"))[0]
        return "\n".join(texts) if texts else None
    return None


def _tool_defs(tools: Any) -> str | None:
    out = []
    for t in tools or []:
        if not isinstance(t, dict):
            continue
        decls = t.get("functionDeclarations") or t.get("function_declarations")
        if isinstance(decls, list):
            out += [{"name": d.get("name"), "description": d.get("description"), "parameters": d.get("parameters")} for d in decls if isinstance(d, dict)]
        elif t.get("type") == "function" or "parameters" in t:
            out.append({"name": t.get("name"), "description": t.get("description"), "parameters": t.get("parameters")})
        else:  # built-in tools: googleSearch, codeExecution, urlContext, …
            out += [{"name": k, "type": k} for k in t if k != "type"] or [{"name": t.get("type"), "type": t.get("type")}]
    return tools_json(out)


def _generate_content_request(req: Mapping[str, Any]) -> Row:
    return {
        "model": as_str(req.get("model")),
        "system_text": _system(req.get("systemInstruction") or req.get("system_instruction")),
        "messages": _content_messages(req.get("contents")),
        "tools_json": _tool_defs(req.get("tools")),
        "request_params": params(req, {"contents", "systemInstruction", "system_instruction", "tools", "model"}),
    }


def generate_content_response(resp: Mapping[str, Any]) -> Row:
    candidates = [c for c in resp.get("candidates") or [] if isinstance(c, dict)]
    candidates.sort(key=lambda c: as_int(c.get("index")) or 0)
    choices = []
    first_thoughts: list[str] = []
    for i, c in enumerate(candidates):
        texts, thoughts, calls, _ = _parts(get_path(c, "content", "parts"))
        raw = c.get("finishReason")
        norm = finish(raw)
        if norm == "stop" and calls:
            norm = "tool_calls"
        choices.append({"index": as_int(c.get("index")) or i, "text": "".join(texts) if texts else None,
                        "tool_calls": calls or None, "finish_reason": norm, "raw": raw})
        if i == 0:
            first_thoughts = thoughts
    first = choices[0] if choices else None
    block = as_str(get_path(resp, "promptFeedback", "blockReason"))
    row: Row = {
        "response_id": as_str(resp.get("responseId")),
        "model_resolved": as_str(resp.get("modelVersion")),
        "response_text": first["text"] if first else None,
        "response_tool_calls": first["tool_calls"] if first else None,
        "response_reasoning": "\n".join(first_thoughts) if first_thoughts else None,
        "n_choices": len(choices),
        "choices": [{k: c[k] for k in ("index", "text", "tool_calls", "finish_reason")} for c in choices] if len(choices) > 1 else None,
        "finish_reason": first["finish_reason"] if first else ("content_filter" if block else None),
        "finish_reason_raw": as_str(first["raw"]) if first else block,
        "status_code": 200,
        "_created": parse_ts(resp.get("createTime")) if resp.get("createTime") else None,
        **usage_gemini(resp.get("usageMetadata")),
    }
    return row


parse_generate_content = body_format(
    "gemini_generate_content",
    "Google Gemini generateContent body: request `contents[]` (+ `systemInstruction`), response `candidates[]` + `usageMetadata`",
    _is_generate_content,
    order=40,
)(body_parser("generate_content", "google", request=_generate_content_request, response=generate_content_response,
              is_error=error_unless("candidates"), model_from_response=True))


def _interaction_input(value: Any) -> list[dict]:
    if isinstance(value, str):
        return [message("user", value)]
    out = []
    for item in value if isinstance(value, list) else [value] if isinstance(value, dict) else []:
        if isinstance(item, str):
            out.append(message("user", item))
        elif isinstance(item, dict):
            if "role" in item:
                role = "assistant" if item.get("role") in ("model", "assistant") else as_str(item.get("role")) or "user"
                content = item.get("content")
                text = content if isinstance(content, str) else "\n".join(
                    p.get("text") for p in content or [] if isinstance(p, dict) and isinstance(p.get("text"), str)
                ) or None
                out.append(message(role, text))
            elif item.get("type") == "text":
                out.append(message("user", as_str(item.get("text"))))
            elif item.get("type") == "function_result":
                out.append(message("tool", dumps(item.get("result")), tool_call_id=as_str(item.get("call_id")), name=as_str(item.get("name"))))
    return out


def _interaction_request(req: Mapping[str, Any]) -> Row:
    return {
        "model": as_str(req.get("model")),
        "system_text": _system(req.get("system_instruction")),
        "messages": _interaction_input(req.get("input")),
        "tools_json": _tool_defs(req.get("tools")),
        "parent_id": as_str(req.get("previous_interaction_id")),
        "request_params": params(req, {"input", "system_instruction", "tools", "model", "previous_interaction_id"}),
    }


def _interaction_response(resp: Mapping[str, Any]) -> Row:
    texts, thoughts, calls = [], [], []
    for step in resp.get("steps") or []:
        if not isinstance(step, dict):
            continue
        stype = as_str(step.get("type")) or ""
        if stype == "model_output":
            texts += [p["text"] for p in step.get("content") or [] if isinstance(p, dict) and isinstance(p.get("text"), str)]
        elif stype == "thought":
            thoughts += [p["text"] for p in step.get("summary") or [] if isinstance(p, dict) and isinstance(p.get("text"), str)]
        elif stype == "function_call" or stype.endswith("_call"):
            calls.append(tool_call(step.get("id"), step.get("name") or stype.removesuffix("_call"), step.get("arguments"),
                                   "function" if stype == "function_call" else stype))
    status = as_str(resp.get("status"))
    norm = finish(status) if status else None
    if status == "completed" and any(c["type"] == "function" for c in calls):
        norm = "tool_calls"
    return {
        "response_id": as_str(resp.get("id")),
        "model_resolved": as_str(resp.get("model")),
        "response_text": "".join(texts) if texts else None,
        "response_tool_calls": calls or None,
        "response_reasoning": "\n".join(thoughts) if thoughts else None,
        "n_choices": 1,
        "finish_reason": norm,
        "finish_reason_raw": status,
        "service_tier": as_str(resp.get("service_tier")),
        "status_code": 200,
        "_created": parse_ts(resp.get("created")),
        **usage_interactions(resp.get("usage")),
    }


def _previous_interaction(row: Row, req: Body, resp: Mapping[str, Any]) -> None:
    if not row.get("parent_id"):
        row["parent_id"] = as_str(resp.get("previous_interaction_id"))


parse_interaction = body_format(
    "gemini_interaction",
    "Google Gemini Interactions API body: response `object: interaction` + `steps[]` + `usage.total_*_tokens`",
    _is_interaction,
    order=40,
)(body_parser("interactions", "google", request=_interaction_request, response=_interaction_response,
              is_error=error_unless("steps"), answered=_previous_interaction, model_from_response=True))
