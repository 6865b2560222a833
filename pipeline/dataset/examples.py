"""From store rows to training examples: conversations, prefix chains and token counts.

A request's *conversation* is its request messages followed by its response as an assistant
turn. In a multi-turn session each call resends the history, so the conversation of turn k is a
prefix of the request of turn k+1. We keep one example per *final* conversation state: a
surviving request whose conversation is a prefix of another surviving request's prompt is merged
into that later example (its assistant turn is kept there as an earlier assistant message), and
lineage lists every request an example came from. Prefixes are compared by a hash chain over
(role, stripped content, tool calls), so the cost is linear in the number of messages.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa
import xxhash

from pipeline.similarity import mask_dynamic
from pipeline.tokens import TokenCounter
from pipeline.workdir.store import list_values, present_values, string_values

# Non-text parts that a text-only training example would silently lose (the answer would refer to
# an image the model never sees). Thinking/reasoning parts are dropped on purpose: targets train
# on the visible answer.
UNSUPPORTED_PART_TYPES = frozenset(
    {"image", "image_url", "input_image", "document", "file", "input_file", "input_audio", "audio", "video"}
)
# Tool-call types that are client-side function calls in every provider's wording.
FUNCTION_CALL_TYPES = frozenset({"function", "tool_use", None})


@dataclass
class Message:
    role: str  # user | assistant | tool
    content: str | None
    tool_calls: list[dict[str, Any]] | None = None  # [{id, type, name, arguments}]
    tool_call_id: str | None = None
    name: str | None = None
    parts_json: str | None = None
    weight: int | None = None  # 0 on an earlier assistant turn whose own request was rejected


@dataclass
class Example:
    """One training example: a final conversation state and the requests it came from."""

    final_request_id: str
    request_ids: list[str]
    task_type: str
    session_id: str | None
    ts: datetime | None
    feedback: float | None
    system: str | None
    messages: list[Message]
    tools: list[dict[str, Any]] | None
    tokens: int = 0
    assistant_tokens: int = 0
    example_id: str = ""
    split: str | None = None
    findings: dict[str, int] = field(default_factory=dict)  # secret/PII kind -> count
    file: str | None = None  # where it was written, relative to the dataset folder
    line: int | None = None


def messages_of(row: dict[str, Any], request: list[Message] | None = None) -> list[Message]:
    """The request messages of a store row plus its response as the last assistant turn
    (`request`: the row's messages, already built by `request_messages`)."""
    out = [*request] if request is not None else [
        Message(
            role=m.get("role") or "user",
            content=m.get("content"),
            tool_calls=list(m["tool_calls"]) if m.get("tool_calls") else None,
            tool_call_id=m.get("tool_call_id"),
            name=m.get("name"),
            parts_json=m.get("parts_json"),
        )
        for m in row.get("messages") or []
    ]
    calls = row.get("response_tool_calls")
    out.append(Message("assistant", row.get("response_text"), list(calls) if calls else None))
    return out


def request_messages(column: pa.Array | pa.ChunkedArray) -> list[list[Message]]:
    """A `messages` column as each row's `Message`s, built field by field from the flattened
    structs (no dict per message first: the same Messages as `messages_of` builds from `to_pylist`)."""
    offsets, values = list_values(column)
    fields = [string_values(values.field(name)) for name in ("role", "content", "tool_call_id", "name", "parts_json")]
    calls = present_values(values.field("tool_calls"))  # tool calls are rare: converted where present
    messages = [Message(role or "user", content, calls.get(i) or None, call_id, name, parts)
                for i, (role, content, call_id, name, parts) in enumerate(zip(*fields, strict=True))]
    return [messages[lo:hi] for lo, hi in zip(offsets[:-1], offsets[1:], strict=True)]


def tools_of(row: dict[str, Any]) -> list[dict[str, Any]] | None:
    raw = row.get("tools_json")
    if not raw:
        return None
    try:
        tools = json.loads(raw)
    except json.JSONDecodeError:
        return None
    return [t for t in tools if isinstance(t, dict) and t.get("name")] or None


def conversation_texts(system: str | None, messages: Sequence[Message]) -> list[str | None]:
    """Every text of a conversation that redaction reads, in this order: the system prompt, each
    message's content, then each tool call's arguments."""
    return [system, *(m.content for m in messages),
            *(c.get("arguments") for m in messages for c in m.tool_calls or [])]


def _message_digest(m: Message) -> bytes:
    """An injective encoding of (role, stripped content, tool calls): equal exactly when those are.
    Role and text are length-prefixed (no JSON encoding of the text: it was most of the chain's
    cost); tool calls, rare, keep their JSON."""
    text = (m.content or "").strip()
    head = f"{len(m.role)}:{m.role}{len(text)}:{text}"
    if m.tool_calls:
        head += json.dumps([(c.get("name"), c.get("arguments")) for c in m.tool_calls], ensure_ascii=False)
    return head.encode("utf-8", "surrogatepass")


def prefix_keys(system: str | None, messages: Sequence[Message]) -> list[bytes]:
    """Hash-chain key of every prefix: keys[i] identifies (system, messages[: i + 1])."""
    h = xxhash.xxh3_128_digest((system or "").strip().encode("utf-8", "surrogatepass"))
    keys = []
    for m in messages:
        h = xxhash.xxh3_128_digest(h + _message_digest(m))
        keys.append(h)
    return keys


def has_unsupported_parts(messages: Iterable[Message]) -> bool:
    for m in messages:
        if not m.parts_json:
            continue
        try:
            parts = json.loads(m.parts_json)
        except json.JSONDecodeError:
            return True
        for p in parts if isinstance(parts, list) else [parts]:
            if isinstance(p, dict) and p.get("type") in UNSUPPORTED_PART_TYPES:
                return True
    return False


def tool_problem(messages: Sequence[Message], supports_tools: bool) -> str | None:
    """Why a conversation's tool turns cannot be written in the target format, or None."""
    uses_tools = any(m.tool_calls or m.role == "tool" for m in messages)
    if not uses_tools:
        return None
    if not supports_tools:
        return "target format has no tool calls"
    open_calls: set[str] = set()
    for m in messages:
        for c in m.tool_calls or []:
            if c.get("type") not in FUNCTION_CALL_TYPES:
                return f"server-side tool call `{c.get('type')}`"
            if not c.get("name"):
                return "tool call without a name"
            if c.get("id"):
                open_calls.add(c["id"])
        if m.role == "tool" and (not m.tool_call_id or m.tool_call_id not in open_calls):
            return "tool result without a matching tool call"
    return None


def count_tokens(
    system: str | None, messages: Sequence[Message], tools: list[dict[str, Any]] | None, counter: TokenCounter
) -> tuple[int, int]:
    """(total, assistant) tokens as OpenAI's data-prep cookbook counts them.

    3 tokens of framing per message, +1 per `name`, +3 for reply priming; tool calls and tool
    definitions are counted as their JSON text (the cookbook has no rule for them).
    """
    total, assistant = 3, 0
    if system:
        total += 3 + counter.count(system)
    for m in messages:
        n = counter.count(m.content)
        if m.tool_calls:
            n += counter.count(json.dumps([[c.get("name"), c.get("arguments")] for c in m.tool_calls]))
        total += 3 + n + (1 + counter.count(m.name) if m.name else 0)
        if m.role == "assistant":
            assistant += n
    if tools:
        total += counter.count(json.dumps(tools, ensure_ascii=False))
    return total, assistant


_PARTLY_MASKED = re.compile(r"[\w#]*#[\w#]*")


def tool_turn_text(text: str | None) -> str:
    """A tool result or tool-call arguments as dedup compares them: machine-written JSON whose ids,
    timestamps and counters (call ids, request ids, epoch times) differ between two runs of the same
    agent task, so they are masked (pipeline/similarity.py); user and assistant prose is not. A token
    left partly masked (`req_e3f9a2` -> `req_e#f#a#`) is an id too: it becomes one `#`."""
    return _PARTLY_MASKED.sub("#", mask_dynamic(text)) if text else ""


def dialog_text(messages: Iterable[Message]) -> str:
    """The user + assistant (+ tool) text that dedup and the leakage check compare; no system prompt.
    Tool turns enter with their volatile spans masked (`tool_turn_text`)."""
    return "\n".join(_dialog_parts(messages)[0])


def dialog_text_segments(messages: Iterable[Message]) -> tuple[str, tuple[str, str, str]]:
    """`dialog_text`, and its words cut around the last user turn's text: (the parts before it, that
    text, the parts after it), each "\n"-joined; ("", "", the text) when no user turn has text.
    Dedup normalizes each segment once (none of its steps crosses a line break, so the segments'
    words are the text's, `dedup.segments_features`), and the prompt key is the middle one's."""
    parts, last = _dialog_parts(messages)
    text = "\n".join(parts)
    if last is None:
        return text, ("", "", text)
    return text, ("\n".join(parts[:last]), parts[last], "\n".join(parts[last + 1:]))


def _dialog_parts(messages: Iterable[Message]) -> tuple[list[str], int | None]:
    """The dialog text's parts, and the index of the last user turn's text among them."""
    parts: list[str] = []
    last = None
    for m in messages:
        if m.content:
            if m.role == "user":
                last = len(parts)
            parts.append(tool_turn_text(m.content) if m.role == "tool" else m.content)
        for c in m.tool_calls or []:
            parts.append(f"{c.get('name') or ''} {tool_turn_text(c.get('arguments'))}")
    return parts, last
