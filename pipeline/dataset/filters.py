"""Per-request quality filters: an ordered list; the first filter that rejects a request names its reason.

Each filter is a small function `(candidate, context) -> bool` (True = drop) registered under its
reason string, in the datatrove keep-or-reason style. `requests in = kept + Σ dropped` holds by
construction: every request gets exactly one outcome. The order runs from cheap and certain
(failed calls) to judgement calls (format, size, PII), so a failed call is counted as `error`
and a content-filtered one as `refusal` rather than as `empty_response`, and each count reads as "dropped here, having passed the ones above".
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipeline.dataset.examples import (
    Message,
    conversation_texts,
    count_tokens,
    has_unsupported_parts,
    tool_problem,
)
from pipeline.dataset.redact import CachedRedactor
from pipeline.tokens import TokenCounter


@dataclass
class Candidate:
    """A request on its way to becoming (part of) an example."""

    row: dict[str, Any]
    label: dict[str, Any]
    messages: list[Message]
    tools: list[dict[str, Any]] | None
    task_type: str
    tokens: int = 0
    assistant_tokens: int = 0

    def release(self) -> None:
        """Drop the row and messages once examples are built: the rest of the run needs only the id."""
        self.row = {"request_id": self.row["request_id"]}
        self.messages = []
        self.tools = None

    @property
    def request_id(self) -> str:
        return self.row["request_id"]

    @property
    def feedback(self) -> float | None:
        rating = self.label.get("feedback_rating")
        return float(rating) if rating is not None else self.row.get("feedback_score")

    @property
    def response_text(self) -> str:
        return self.row.get("response_text") or ""


@dataclass
class FilterContext:
    max_example_tokens: int
    supports_tools: bool
    pii_drop: bool
    refusal_prefix_chars: int
    json_task_types: frozenset[str] = frozenset()
    counter: TokenCounter | None = None  # counts example tokens for over_token_limit
    # finds secrets and PII for the pii filter: memoized by content, so a system prompt or a turn
    # that every later request resends is scanned once
    redactor: CachedRedactor = field(default_factory=CachedRedactor)
    details: dict[str, str] = field(default_factory=dict)  # request_id -> why, for lineage


# Anchored at the start of the answer: topic word lists ("illegal", "ethics") over-filter
# ordinary answers (dedup.md §2.1 #4); a refusal states itself in its first sentence, as an
# apology or a "cannot" followed by a verb of helping ("Sorry to hear that, I can't imagine…" is not one).
_APOS = "['\u2019]"
_CANNOT = (rf"(?:can{_APOS}?t|cannot|can not|won{_APOS}t(?: be able to)?|will not(?: be able to)?|"
           rf"am (?:not able|unable) to|{_APOS}m (?:not able|unable) to)")
_HELP_VERB = (r"(?:help|assist|comply|provide|fulfil|do (?:that|this)|share|answer|support|create|generate|write|"
              r"engage|complete|continue|participate|discuss|give)")
REFUSAL = re.compile(
    r"^\W*(?:"
    rf"(?:i{_APOS}m|i am|i{_APOS}m so|i am so|i|so|very|really)?\s*(?:sorry|apologi[sz]e)\b[^.!?\n]{{0,60}}?\bi\s*{_CANNOT}\s+{_HELP_VERB}"
    rf"|i\s*{_CANNOT}\s+{_HELP_VERB}"
    r"|as an ai(?: language model| assistant)?,?\s+i\s+(?:can't|can’t|cannot|don't|don’t|am not|am unable|do not)"
    r"|i\s+(?:must|have to)\s+(?:respectfully\s+)?(?:decline|refuse)"
    rf"|(?:unfortunately|i{_APOS}m afraid),?\s+i\s*{_CANNOT}\s+{_HELP_VERB}"
    r")",
    re.IGNORECASE,
)


def error(c: Candidate, ctx: FilterContext) -> bool:
    # The store's one outcome rule, computed by the partition query (request_failed macro).
    return bool(c.row["failed"])


def empty_response(c: Candidate, ctx: FilterContext) -> bool:
    return not c.response_text.strip() and not c.row.get("response_tool_calls")


def empty_prompt(c: Candidate, ctx: FilterContext) -> bool:
    return not any(m.role == "user" and (m.content or "").strip() for m in c.messages[:-1])


def truncated(c: Candidate, ctx: FilterContext) -> bool:
    return c.row.get("finish_reason") == "length"


def refusal(c: Candidate, ctx: FilterContext) -> bool:
    if c.row.get("finish_reason") in ("refusal", "content_filter"):
        return True
    return bool(REFUSAL.match(c.response_text.lstrip()[: ctx.refusal_prefix_chars]))


def regenerated(c: Candidate, ctx: FilterContext) -> bool:
    return bool(c.label.get("regenerated"))


def edited(c: Candidate, ctx: FilterContext) -> bool:
    return bool(c.label.get("edited"))


def negative_feedback(c: Candidate, ctx: FilterContext) -> bool:
    fb = c.feedback
    return fb is not None and fb < 0


def invalid_format(c: Candidate, ctx: FilterContext) -> bool:
    """Output that breaks its task's format: not JSON where the task (or the request) asks for JSON."""
    if c.row.get("response_tool_calls") and not c.response_text.strip():
        return False  # a tool-call turn has no text output to check
    if c.task_type not in ctx.json_task_types and not requests_json(c.row):
        return False
    return not is_json(c.response_text)


def unsupported_content(c: Candidate, ctx: FilterContext) -> bool:
    return has_unsupported_parts(c.messages)


def unsupported_tool_calls(c: Candidate, ctx: FilterContext) -> bool:
    why = tool_problem(c.messages, ctx.supports_tools)
    if why:
        ctx.details[c.request_id] = why
    return why is not None


def over_token_limit(c: Candidate, ctx: FilterContext) -> bool:
    if ctx.counter is not None:  # counted here, so requests dropped by an earlier filter cost nothing
        c.tokens, c.assistant_tokens = count_tokens(c.row.get("system_text"), c.messages, c.tools, ctx.counter)
    if c.tokens > ctx.max_example_tokens:
        ctx.details[c.request_id] = f"{c.tokens} tokens > {ctx.max_example_tokens}"
        return True
    return False


def pii_texts(c: Candidate) -> list[str | None]:
    """Every text of a candidate's conversation the pii filter looks at."""
    return conversation_texts(c.row.get("system_text"), c.messages)


def pii(c: Candidate, ctx: FilterContext) -> bool:
    """Only with `--pii drop`: any secret or PII anywhere in the conversation."""
    if not ctx.pii_drop:
        return False
    kinds = sorted({kind for _, found in ctx.redactor.redact_all(pii_texts(c)) for kind, _ in found})
    if kinds:
        ctx.details[c.request_id] = ", ".join(kinds)
    return bool(kinds)


FilterFn = Callable[[Candidate, FilterContext], bool]
FILTERS: dict[str, FilterFn] = {
    "error": error,
    "truncated": truncated,
    "refusal": refusal,  # before empty_response: a content filter or refusal often returns no text
    "empty_response": empty_response,
    "empty_prompt": empty_prompt,
    "regenerated": regenerated,
    "edited": edited,
    "negative_feedback": negative_feedback,
    "invalid_format": invalid_format,
    "unsupported_content": unsupported_content,
    "unsupported_tool_calls": unsupported_tool_calls,
    "over_token_limit": over_token_limit,
    "pii": pii,
}
# Filters that need audit/request_labels.parquet; without it they are skipped and the manifest says so.
LABEL_FILTERS = ("regenerated", "edited")
# Reasons that mean "this answer is bad": such a turn kept as history in a later example gets weight 0.
BAD_ANSWER_REASONS = frozenset(
    {"empty_response", "truncated", "refusal", "regenerated", "edited", "negative_feedback", "invalid_format"}
)
# Reasons given after filtering, to whole examples.
DEDUP_REASONS = ("duplicate", "near_duplicate")
# Given, for a target format with no per-turn weight, to the requests of an example that holds a
# rejected assistant turn (weight 0): such a format would train on that turn, so the example is dropped.
REJECTED_TURN = "rejected_turn"


def first_reason(c: Candidate, names: tuple[str, ...], ctx: FilterContext) -> str | None:
    for name in names:
        if FILTERS[name](c, ctx):
            return name
    return None


def requests_json(row: dict[str, Any]) -> bool:
    """The request asked for JSON output (OpenAI response_format, Gemini responseMimeType)."""
    raw = row.get("request_params")
    if not raw or "json" not in raw:
        return False
    try:
        params = json.loads(raw)
    except json.JSONDecodeError:
        return False
    if not isinstance(params, dict):
        return False
    text_cfg = params.get("text")  # the Responses API puts the format under text.format
    fmt = params.get("response_format") or (text_cfg.get("format") if isinstance(text_cfg, dict) else None)
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        return True
    gen = params.get("generationConfig") or params.get("generation_config") or {}
    return isinstance(gen, dict) and gen.get("responseMimeType") == "application/json"


def is_json(text: str) -> bool:
    s = text.strip()
    if not s or s[0] not in "{[":
        return False
    try:
        json.loads(s)
    except ValueError:
        return False
    return True
