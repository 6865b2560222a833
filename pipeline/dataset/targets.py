"""Target formats: render an Example as one JSONL record, and validate records the way each target does.

- `openai`: OpenAI chat fine-tuning, `{"messages": [...], "tools": [...]}` (tools only when used).
  `validate_openai` runs every check of OpenAI's data-prep cookbook (data_type,
  missing_messages_list, message_missing_key, message_unrecognized_key, unrecognized_role,
  missing_content, example_missing_assistant_message, the token limit) updated for the current
  tool-calling schema: the cookbook predates `tools`, so taken literally it would reject
  `tool_calls`/`tool_call_id` keys and the `tool` role that OpenAI's fine-tuning API accepts today.
- `anthropic`: Claude on Bedrock fine-tuning, `{"system": "...", "messages": [...]}`: first turn
  user, last assistant, strict alternation, no extra keys, no tool turns.
- `trl`: Hugging Face TRL conversational `{"messages": [...]}` (+ `tools`), role/content dicts.
- `sharegpt`: `{"conversations": [{"from": "system|human|gpt", "value": "..."}]}`, no tool turns.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from pipeline.dataset.examples import Example, Message, tool_turn_text

Record = dict[str, Any]


def _openai_tool_calls(m: Message) -> list[dict[str, Any]]:
    return [
        {
            "id": c.get("id") or f"call_{i}",
            "type": "function",
            "function": {"name": c.get("name"), "arguments": c.get("arguments") or "{}"},
        }
        for i, c in enumerate(m.tool_calls or [])
    ]


def _openai_tools(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    out = []
    for t in tools or []:
        fn: dict[str, Any] = {"name": t["name"]}
        if t.get("description"):
            fn["description"] = t["description"]
        fn["parameters"] = t.get("parameters") or {"type": "object", "properties": {}}
        out.append({"type": "function", "function": fn})
    return out


def to_openai(ex: Example) -> Record:
    msgs: list[dict[str, Any]] = []
    if ex.system:
        msgs.append({"role": "system", "content": ex.system})
    for m in ex.messages:
        out: dict[str, Any] = {"role": m.role}
        if m.role == "assistant":
            if m.content or not m.tool_calls:
                out["content"] = m.content or ""
            if m.tool_calls:
                out["tool_calls"] = _openai_tool_calls(m)
            if m.weight == 0:
                out["weight"] = 0
        elif m.role == "tool":
            out["tool_call_id"] = m.tool_call_id
            out["content"] = m.content or ""
        else:
            out["content"] = m.content or ""
            if m.name:
                out["name"] = m.name
        msgs.append(out)
    record: Record = {"messages": msgs}
    if ex.tools and any(m.tool_calls for m in ex.messages):
        record["tools"] = _openai_tools(ex.tools)
    return record


def to_trl(ex: Example) -> Record:
    record = to_openai(ex)
    for m in record["messages"]:
        m.pop("weight", None)  # TRL masks by role (assistant_only_loss), not per turn
    return record


def _merged_turns(ex: Example, human: str, bot: str) -> list[tuple[str, str]]:
    """(role, text) turns with consecutive same-role turns merged, so user/assistant alternate."""
    turns: list[tuple[str, str]] = []
    for m in ex.messages:
        role = bot if m.role == "assistant" else human
        text = m.content or ""
        if turns and turns[-1][0] == role:
            turns[-1] = (role, turns[-1][1] + "\n\n" + text)
        else:
            turns.append((role, text))
    return turns


def to_anthropic(ex: Example) -> Record:
    record: Record = {}
    if ex.system:
        record["system"] = ex.system
    record["messages"] = [{"role": r, "content": t} for r, t in _merged_turns(ex, "user", "assistant")]
    return record


def to_sharegpt(ex: Example) -> Record:
    conv = [{"from": "system", "value": ex.system}] if ex.system else []
    conv += [{"from": r, "value": t} for r, t in _merged_turns(ex, "human", "gpt")]
    return {"conversations": conv}


# --- validation ----------------------------------------------------------------------------------

_OPENAI_ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
_OPENAI_KEYS = {"role", "content", "name", "function_call", "weight", "tool_calls", "tool_call_id"}


def validate_openai(record: Any, max_tokens: int | None = None, tokens: int | None = None) -> list[str]:
    """Error keys for one record, named as in OpenAI's data-prep cookbook (empty list = valid)."""
    if not isinstance(record, dict):
        return ["data_type"]
    messages = record.get("messages")
    if not messages or not isinstance(messages, list):
        return ["missing_messages_list"]
    errors: list[str] = []
    extra = set(record) - {"messages", "tools", "parallel_tool_calls"}
    if extra:
        errors.append("record_unrecognized_key")
    call_ids: set[str] = set()
    for m in messages:
        if not isinstance(m, dict) or "role" not in m or ("content" not in m and "tool_calls" not in m):
            errors.append("message_missing_key")
            continue
        if set(m) - _OPENAI_KEYS:
            errors.append("message_unrecognized_key")
        role = m["role"]
        if role not in _OPENAI_ROLES:
            errors.append("unrecognized_role")
        content = m.get("content")
        if role == "assistant" and m.get("tool_calls"):
            if content is not None and not isinstance(content, str):
                errors.append("missing_content")
            for c in m["tool_calls"]:
                fn = c.get("function") if isinstance(c, dict) else None
                if not (isinstance(fn, dict) and isinstance(fn.get("name"), str) and isinstance(fn.get("arguments"), str)
                        and c.get("type") == "function" and c.get("id")):
                    errors.append("invalid_tool_call")
                else:
                    call_ids.add(c["id"])
        elif not isinstance(content, str) or (not content and role != "assistant"):
            errors.append("missing_content")
        if role == "tool" and m.get("tool_call_id") not in call_ids:
            errors.append("tool_result_without_call")
        if "weight" in m and (role != "assistant" or m["weight"] not in (0, 1)):
            errors.append("invalid_weight")
    assistants = [m for m in messages if isinstance(m, dict) and m.get("role") == "assistant"]
    if not assistants:
        errors.append("example_missing_assistant_message")
    elif all(m.get("weight") == 0 for m in assistants):
        errors.append("no_assistant_message_to_learn_from")
    if isinstance(messages[-1], dict) and messages[-1].get("role") != "assistant":
        errors.append("last_message_not_assistant")
    if "tools" in record:
        tools = record["tools"]
        if not isinstance(tools, list) or not all(
            isinstance(t, dict) and t.get("type") == "function" and isinstance((t.get("function") or {}).get("name"), str)
            for t in tools
        ):
            errors.append("invalid_tools")
    if max_tokens is not None and tokens is not None and tokens > max_tokens:
        errors.append("over_token_limit")
    return errors


def validate_anthropic(record: Any, max_tokens: int | None = None, tokens: int | None = None) -> list[str]:
    """The Bedrock Claude fine-tuning rules (dedup.md §2.4)."""
    if not isinstance(record, dict):
        return ["data_type"]
    errors = []
    if set(record) - {"system", "messages"}:
        errors.append("record_unrecognized_key")
    if "system" in record and not isinstance(record["system"], str):
        errors.append("invalid_system")
    msgs = record.get("messages")
    if not isinstance(msgs, list) or len(msgs) < 2:
        return [*errors, "missing_messages_list"]
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or set(m) != {"role", "content"} or not isinstance(m["content"], str):
            errors.append("message_shape")
            continue
        if m["role"] != ("user" if i % 2 == 0 else "assistant"):
            errors.append("roles_do_not_alternate")
    if isinstance(msgs[-1], dict) and msgs[-1].get("role") != "assistant":
        errors.append("last_message_not_assistant")
    if max_tokens is not None and tokens is not None and tokens > max_tokens:
        errors.append("over_token_limit")
    return sorted(set(errors))


def validate_trl(record: Any, max_tokens: int | None = None, tokens: int | None = None) -> list[str]:
    return [e for e in validate_openai(record, max_tokens, tokens) if e != "invalid_weight"]


def validate_sharegpt(record: Any, max_tokens: int | None = None, tokens: int | None = None) -> list[str]:
    if not isinstance(record, dict) or set(record) != {"conversations"}:
        return ["data_type"]
    conv = record["conversations"]
    errors = []
    if not isinstance(conv, list) or not conv:
        return ["missing_messages_list"]
    for m in conv:
        if not isinstance(m, dict) or set(m) != {"from", "value"} or m["from"] not in ("system", "human", "gpt"):
            errors.append("message_shape")
    if not any(isinstance(m, dict) and m.get("from") == "gpt" for m in conv):
        errors.append("example_missing_assistant_message")
    if max_tokens is not None and tokens is not None and tokens > max_tokens:
        errors.append("over_token_limit")
    return sorted(set(errors))


# --- text for the leakage check, read back from a written record ------------------------------------


def record_dialog_text(record: Record) -> str:
    """User + assistant (+ tool) text of a written record, in the same shape as examples.dialog_text."""
    parts: list[str] = []
    if "conversations" in record:
        return "\n".join(m["value"] for m in record["conversations"] if m.get("from") != "system" and m.get("value"))
    for m in record.get("messages", []):
        if m.get("role") in ("system", "developer"):
            continue
        if m.get("content"):
            parts.append(tool_turn_text(m["content"]) if m.get("role") == "tool" else m["content"])
        for c in m.get("tool_calls") or []:
            fn = c.get("function") or {}
            parts.append(f"{fn.get('name') or ''} {tool_turn_text(fn.get('arguments'))}")
    return "\n".join(parts)


@dataclass(frozen=True)
class TargetFormat:
    name: str
    supports_tools: bool
    supports_weight: bool
    """Per-turn loss weights (OpenAI's `weight: 0`). Without them a rejected earlier turn kept as
    context would become a training target, so examples holding one are dropped for that format."""
    render: Callable[[Example], Record]
    validate: Callable[..., list[str]]
    description: str


FORMATS: dict[str, TargetFormat] = {
    f.name: f
    for f in (
        TargetFormat("openai", True, True, to_openai, validate_openai, "OpenAI chat fine-tuning JSONL (messages + tools)"),
        TargetFormat("anthropic", False, False, to_anthropic, validate_anthropic,
                     "Anthropic Claude fine-tuning on Bedrock (system + alternating messages)"),
        TargetFormat("trl", True, False, to_trl, validate_trl, "Hugging Face TRL conversational `messages`"),
        TargetFormat("sharegpt", False, False, to_sharegpt, validate_sharegpt, "ShareGPT `conversations` (from/value)"),
    )
}


def dumps(record: Record) -> str:
    """The JSONL line of a record: compact, non-ASCII kept. orjson (10x faster) writes exactly what
    `json.dumps(..., ensure_ascii=False, separators=(",", ":"))` writes for strings (every code point),
    64-bit integers, booleans, null, lists and string-keyed objects, which is all a record holds but
    its `tools`: their JSON-schema parameters may hold floats, which the two print differently
    (1e-07 and 1e-7, NaN and null), so a record with tools (and anything orjson refuses: lone
    surrogates, integers beyond 64 bits) goes through the standard library."""
    if "tools" not in record:
        try:
            return orjson.dumps(record).decode("utf-8")
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            pass
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def loads(raw: str | bytes) -> Any:
    """A written record parsed back, as a reader of the file parses it: orjson (3x faster) gives the
    same objects for every valid JSON document it accepts; what it refuses (integers beyond 64 bits,
    NaN) the standard library reads."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)
