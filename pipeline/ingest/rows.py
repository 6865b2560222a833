"""Building blocks the format adapters share: row construction, timestamps, ids, usage buckets.

Adapters map one raw record to dicts keyed by `schemas.REQUEST_COLUMNS`; everything here is pure
and has no knowledge of files.
"""

from __future__ import annotations

import hashlib
import math
import re
from datetime import UTC, datetime
from typing import Any

import orjson

from schemas import REQUEST_COLUMNS

Row = dict[str, Any]

MAX_ERROR_CHARS = 2000


class RecordError(Exception):
    """A record is malformed for the format it was detected as; it goes to rejects with `reason`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail or reason


class Skip(Exception):
    """A valid record that is not an LLM API call (a summary line, a non-LLM span); recorded, not stored."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail or reason


def new_row(**values: Any) -> Row:
    """A row with every column present (None by default); unknown keys are a programming error."""
    unknown = set(values) - _COLUMN_SET
    if unknown:
        raise ValueError(f"unknown columns: {sorted(unknown)}")
    row = dict.fromkeys(REQUEST_COLUMNS)
    row.update(values)
    return row


_COLUMN_SET = frozenset(REQUEST_COLUMNS)


def dumps(value: Any) -> str | None:
    """Canonical JSON text (sorted keys) or None for None/empty containers."""
    if value is None or value == {} or value == []:
        return None
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()


def content_hash(*parts: Any) -> str:
    """Stable id for records that carry none: sha256 of canonical JSON, 32 hex chars."""
    h = hashlib.sha256()
    for p in parts:
        h.update(orjson.dumps(p, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS))
        h.update(b"\x00")
    return "h_" + h.hexdigest()[:32]


# --- timestamps ---------------------------------------------------------------------------

_ISO_SPACE = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(.*)$")


def parse_ts(value: Any) -> datetime | None:
    """Parse ISO-8601 strings (Z, offsets, space separator, no zone = UTC) and epoch s/ms/µs/ns.

    Epoch units are told apart by magnitude, which is unambiguous for dates between 1973 and 2286.
    Returns None for anything else (callers decide whether that is an error).
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    if not isinstance(value, str):
        return None
    s = value.strip()
    if not s:
        return None
    if re.fullmatch(r"-?\d+(\.\d+)?", s):
        return _from_epoch(float(s))
    m = _ISO_SPACE.match(s)
    if not m:
        return None
    date, time, rest = m.groups()
    rest = rest.strip()
    if rest in ("Z", "z", "UTC", "+00", ""):
        rest = "+00:00"
    elif re.fullmatch(r"[+-]\d{4}", rest):
        rest = rest[:3] + ":" + rest[3:]
    elif re.fullmatch(r"[+-]\d{2}", rest):
        rest = rest + ":00"
    frac = ""
    if "." in time:
        time, frac = time.split(".", 1)
        frac = "." + (frac + "000000")[:6]
    if time.count(":") == 1:
        time += ":00"
    try:
        dt = datetime.fromisoformat(f"{date}T{time}{frac}{rest}")
    except ValueError:
        return None
    return dt.astimezone(UTC)


def _from_epoch(x: float) -> datetime | None:
    if not math.isfinite(x) or x <= 0:
        return None
    for divisor in (1.0, 1e3, 1e6, 1e9):
        seconds = x / divisor
        if seconds < 1e10:  # before 2286
            break
    if seconds < 1e8:  # before 1973: not a plausible log time
        return None
    return datetime.fromtimestamp(seconds, tz=UTC)


# --- small coercions -------------------------------------------------------------------------


def as_int(value: Any) -> int | None:
    """Token counts arrive as ints, floats, numeric strings (OTLP intValue) or nothing."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            return int(float(value))
        except ValueError:
            return None
    return None


def as_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def as_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | bool):
        return str(value)
    return dumps(value)


def get_path(obj: Any, *path: str | int) -> Any:
    """`obj[a][b][c]` that returns None instead of raising on a missing or mistyped step."""
    for key in path:
        if isinstance(key, int):
            if not isinstance(obj, list) or not -len(obj) <= key < len(obj):
                return None
        elif not isinstance(obj, dict):
            return None
        obj = obj[key] if isinstance(key, int) else obj.get(key)
        if obj is None:
            return None
    return obj


def bounded(text: str | None, limit: int = MAX_ERROR_CHARS) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[:limit] + "…"


# --- usage: provider semantics -> exclusive buckets (formats.md §0.2) ----------------------


def usage_buckets(
    *,
    uncached: int | None = None,
    cache_read: int | None = None,
    write_5m: int | None = None,
    write_1h: int | None = None,
    write_unspecified: int | None = None,
    output: int | None = None,
    reasoning: int | None = None,
    raw: Any = None,
) -> Row:
    """The usage columns of a row. Negative values (inconsistent sources) are clamped to 0."""

    def nn(v: int | None) -> int | None:
        return None if v is None else max(v, 0)

    missing = all(
        v is None for v in (uncached, cache_read, write_5m, write_1h, write_unspecified, output, reasoning)
    )
    return {
        "in_uncached": nn(uncached),
        "in_cache_read": nn(cache_read),
        "in_cache_write_5m": nn(write_5m),
        "in_cache_write_1h": nn(write_1h),
        "in_cache_write_unspecified": nn(write_unspecified),
        "out_total": nn(output),
        "out_reasoning": nn(reasoning),
        "usage_raw": dumps(raw) if raw is not None else None,
        "usage_missing": missing,
    }


def usage_inclusive(
    *,
    total_input: int | None,
    cache_read: int | None,
    cache_write: int | None = None,
    output: int | None = None,
    reasoning: int | None = None,
    raw: Any = None,
) -> Row:
    """Sources whose input count INCLUDES cache reads/writes (OpenAI, DeepSeek, OTel, LiteLLM)."""
    uncached = None
    if total_input is not None:
        uncached = total_input - (cache_read or 0) - (cache_write or 0)
    return usage_buckets(
        uncached=uncached,
        cache_read=cache_read,
        write_unspecified=cache_write,
        output=output,
        reasoning=reasoning,
        raw=raw,
    )


def usage_openai(usage: Any) -> Row:
    """OpenAI Chat (`prompt_tokens`) and Responses (`input_tokens`) usage; both are inclusive."""
    if not isinstance(usage, dict):
        return usage_buckets()
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        total = as_int(usage.get("prompt_tokens"))
        details = usage.get("prompt_tokens_details") or {}
        out_details = usage.get("completion_tokens_details") or {}
        output = as_int(usage.get("completion_tokens"))
    else:
        total = as_int(usage.get("input_tokens"))
        details = usage.get("input_tokens_details") or {}
        out_details = usage.get("output_tokens_details") or {}
        output = as_int(usage.get("output_tokens"))
    cached = as_int(get_path(details, "cached_tokens"))
    # DeepSeek: prompt_cache_hit_tokens + prompt_cache_miss_tokens = prompt_tokens.
    if cached is None and "prompt_cache_hit_tokens" in usage:
        cached = as_int(usage.get("prompt_cache_hit_tokens"))
    write = as_int(get_path(details, "cache_write_tokens"))
    reasoning = as_int(get_path(out_details, "reasoning_tokens"))
    return usage_inclusive(
        total_input=total, cache_read=cached, cache_write=write, output=output, reasoning=reasoning, raw=usage
    )


def usage_anthropic(usage: Any) -> Row:
    """Anthropic usage: `input_tokens` EXCLUDES cache reads and writes."""
    if not isinstance(usage, dict):
        return usage_buckets()
    write_total = as_int(usage.get("cache_creation_input_tokens"))
    w5 = as_int(get_path(usage, "cache_creation", "ephemeral_5m_input_tokens"))
    w1 = as_int(get_path(usage, "cache_creation", "ephemeral_1h_input_tokens"))
    unspecified = None
    if w5 is None and w1 is None:
        unspecified = write_total
    elif write_total is not None:
        rest = write_total - (w5 or 0) - (w1 or 0)
        unspecified = rest if rest > 0 else None
    return usage_buckets(
        uncached=as_int(usage.get("input_tokens")),
        cache_read=as_int(usage.get("cache_read_input_tokens")),
        write_5m=w5,
        write_1h=w1,
        write_unspecified=unspecified,
        output=as_int(usage.get("output_tokens")),
        reasoning=as_int(get_path(usage, "output_tokens_details", "thinking_tokens")),
        raw=usage,
    )


# --- finish reasons --------------------------------------------------------------------------

_FINISH = {
    # OpenAI chat / completions
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    # Anthropic
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "refusal",
    "pause_turn": "pause",
    "model_context_window_exceeded": "length",
    # Responses API status / incomplete reasons
    "completed": "stop",
    "max_output_tokens": "length",
    "failed": "error",
    "cancelled": "error",
    "incomplete": "length",
    # Gemini / Bedrock / Cohere / OTel spellings
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "MALFORMED_FUNCTION_CALL": "error",
    "COMPLETE": "stop",
    "TOOL_CALL": "tool_calls",
    "ERROR": "error",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "error": "error",
}


def normalize_finish(raw: Any) -> str | None:
    if raw is None:
        return None
    s = str(raw)
    return _FINISH.get(s) or _FINISH.get(s.lower()) or _FINISH.get(s.upper()) or "other"


def make_row(fields: Row, *, record: Any = None, **overrides: Any) -> Row:
    """Assemble a full row from parsed body fields plus wrapper fields (wrapper wins when set).

    Private helper keys (leading underscore, e.g. `_created` from a body's own timestamp) fill
    `ts` when the wrapper has none. `request_id` falls back to the response id, then to a content
    hash of `record`, so re-ingesting the same record always yields the same id.
    """
    values = {k: v for k, v in fields.items() if not k.startswith("_")}
    for k, v in overrides.items():
        if v is not None:
            values[k] = v
    if values.get("ts") is None and fields.get("_created") is not None:
        values["ts"] = fields["_created"]
    if not values.get("request_id"):
        values["request_id"] = values.get("response_id") or content_hash(record)
    if values.get("usage_missing") is None:
        values["usage_missing"] = all(
            values.get(k) is None
            for k in ("in_uncached", "in_cache_read", "in_cache_write_5m", "in_cache_write_1h",
                      "in_cache_write_unspecified", "out_total")
        )
    return new_row(**values)
