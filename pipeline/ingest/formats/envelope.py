"""The tool's own envelope (schemas/envelope.md) and the generic `{request, response}` wrapper."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.ingest.bodies.partial import recover_bodies, with_partial
from pipeline.ingest.formats import Context, record_format
from pipeline.ingest.rows import (
    RecordError,
    Row,
    as_float,
    as_int,
    as_str,
    bounded,
    dumps,
    make_row,
    parse_ts,
)

_BODY_HINTS = {
    "/v1/chat/completions": "openai_chat",
    "/chat/completions": "openai_chat",
    "/v1/messages": "anthropic_messages",
    "/v1/responses": "openai_responses",
}


def _is_envelope(rec: Mapping[str, Any]) -> bool:
    return "request" in rec and ("response" in rec or "error" in rec) and isinstance(rec.get("request"), dict | None)


def feedback_score(feedback: Any) -> float | None:
    """Thumbs (+1/-1, true/false, "up"/"down") and star or numeric scores, mapped to [-1, 1]."""
    if not isinstance(feedback, dict):
        return None
    rating = feedback.get("rating", feedback.get("score", feedback.get("value")))
    if isinstance(rating, bool):
        return 1.0 if rating else -1.0
    if isinstance(rating, str):
        word = rating.strip().lower()
        if word in ("up", "thumbs_up", "good", "positive", "like", "true"):
            return 1.0
        if word in ("down", "thumbs_down", "bad", "negative", "dislike", "false"):
            return -1.0
    value = as_float(rating)
    if value is None:
        return None
    scale = as_float(feedback.get("scale"))
    if scale and scale > 1:  # stars 1..scale -> [-1, 1]
        return max(-1.0, min(1.0, 2 * (value - 1) / (scale - 1) - 1))
    return max(-1.0, min(1.0, value))


# Capture-time fields that recorders add beside the bodies (`_captured`, `captured_at`, `_meta: {ts}`…),
# compared with leading underscores and case ignored; the first present wins.
_TIME_KEYS = ("timestamp", "logged_at", "created_at", "captured", "captured_at", "capturedat", "recorded_at",
              "recordedat", "received_at", "receivedat", "saved_at", "time", "ts", "datetime")


def capture_time(rec: Mapping[str, Any]) -> Any:
    """The record's own time: a top-level time field, or one inside a `_meta`/`_capture` object."""
    keys = {k.lstrip("_").lower(): k for k in rec if isinstance(k, str)}
    for name in _TIME_KEYS:
        if name in keys:
            value = rec[keys[name]]
            if isinstance(value, dict):
                value = capture_time(value)
            if value not in (None, ""):
                return value
    for name in ("meta", "capture", "captured", "metadata"):
        inner = rec.get(keys[name]) if name in keys else None
        if isinstance(inner, dict):
            value = capture_time(inner)
            if value not in (None, ""):
                return value
    return None


@record_format(
    "envelope",
    "llm-log-audit envelope or a generic wrapper: an object with `request` and `response` (or `error`); bodies auto-detected; "
    "time from `timestamp`/`logged_at`/`created_at` or capture-time fields (`_captured`, `captured_at`, `_meta.ts`, …)",
    _is_envelope,
    order=60,
)
def parse_envelope(rec: Mapping[str, Any], ctx: Context) -> list[Row]:
    endpoint = as_str(rec.get("endpoint"))
    if "provider" in rec or "endpoint" in rec:
        # Our own envelope (schemas/envelope.md) requires both: an id makes re-ingest idempotent
        # across edits of the file, and a call without a time cannot be audited. Generic
        # `{request, response}` wrappers from other tools stay lenient.
        for key in ("id", "timestamp"):
            if rec.get(key) in (None, ""):
                raise RecordError("missing_field", f"envelope record has no `{key}`")
    for side in ("request", "response"):
        if rec.get(side) is not None and not isinstance(rec.get(side), dict):
            raise RecordError("wrong_type", f"{side} body is {type(rec.get(side)).__name__}, expected an object")
    # A side in another shape, or unreadable, no longer costs the side that parses.
    recovered = recover_bodies({"request": rec.get("request")}, {"response": rec.get("response")},
                               hint=_BODY_HINTS.get(endpoint or ""))
    fields = recovered.fields
    if not fields and rec.get("error") is None:
        raise RecordError("unknown_body_format", "record carries neither a request nor a response body")
    ts_raw = capture_time(rec)
    ts = parse_ts(ts_raw)
    if ts_raw is not None and ts is None:
        raise RecordError("bad_timestamp", f"`timestamp` {ts_raw!r} is not ISO-8601 or epoch")
    err = rec.get("error")
    overrides: dict[str, Any] = {"status_code": as_int(rec.get("status_code"))}
    if isinstance(err, dict):
        overrides |= {
            "finish_reason": "error",
            "status_code": as_int(err.get("status") or err.get("status_code") or err.get("code")),
            "error_type": as_str(err.get("type") or err.get("code")) or "error",
            "error_message": bounded(as_str(err.get("message"))),
        }
    elif err is not None:
        overrides |= {"finish_reason": "error", "error_type": "error", "error_message": bounded(as_str(err))}
    feedback = rec.get("feedback")
    metadata = rec.get("metadata")
    partial = dict(recovered.partial)
    if err is not None:
        partial.pop("response", None)  # a failed call has no response by nature
    provider = as_str(rec.get("provider"))
    return [
        make_row(
            fields,
            record=rec,
            request_id=as_str(rec.get("id") or rec.get("request_id")),
            ts=ts,
            provider=provider.lower() if provider else None,
            user_id=as_str(rec.get("user_id")),
            session_id=as_str(rec.get("session_id")),
            latency_ms=as_float(rec.get("latency_ms")),
            ttft_ms=as_float(rec.get("ttft_ms")),
            feedback_score=feedback_score(feedback),
            feedback_json=dumps(feedback) if isinstance(feedback, dict) else None,
            metadata_json=dumps(with_partial(metadata if isinstance(metadata, dict) else None, partial)),
            **overrides,
        )
    ]
