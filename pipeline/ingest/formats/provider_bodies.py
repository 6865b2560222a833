"""Bare provider bodies with no wrapper: a response body alone, a request body alone, or an API error body.

Checked last: every wrapper format contains such bodies and must claim its records first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.ingest.bodies import detect_body, error_body, parse_bodies
from pipeline.ingest.formats import Context, record_format
from pipeline.ingest.rows import Row, make_row


def _looks_like_response(rec: Mapping[str, Any]) -> bool:
    # Body detectors only look at response-side keys when given a response, so a request body
    # (`model` + `messages`) is not mistaken for one.
    return detect_body(None, rec) is not None


def _is_bare_body(rec: Mapping[str, Any]) -> bool:
    return _looks_like_response(rec) or detect_body(rec, None) is not None


def _is_error_body(rec: Mapping[str, Any]) -> bool:
    err = rec.get("error")
    return isinstance(err, dict) and "message" in err and len(rec) <= 3


@record_format(
    "provider_body",
    "a bare provider request or response body (OpenAI Chat, Anthropic Messages, and the other body formats)",
    _is_bare_body,
    order=90,
)
def parse_bare_body(rec: Mapping[str, Any], ctx: Context) -> list[Row]:
    fields = parse_bodies(None, rec) if _looks_like_response(rec) else parse_bodies(rec, None)
    return [make_row(fields, record=rec)]


@record_format(
    "api_error_body",
    "a bare API error body: `{error: {message, type|code}}`",
    _is_error_body,
    order=90,
)
def parse_error_body(rec: Mapping[str, Any], ctx: Context) -> list[Row]:
    return [make_row(error_body(rec), record=rec, provider=_error_provider(rec))]


def _error_provider(rec: Mapping[str, Any]) -> str | None:
    """Error bodies differ by provider: google.rpc `{code: 429, status: "RESOURCE_EXHAUSTED"}`,
    OpenAI `{type, param, code}`, Anthropic `{type: "error", error: {type, message}}`."""
    err = rec.get("error") if isinstance(rec.get("error"), dict) else {}
    status = err.get("status")
    if isinstance(status, str) and status.isupper() and isinstance(err.get("code"), int):
        return "google"
    if rec.get("type") == "error":
        return "anthropic"
    if "param" in err:
        return "openai"
    return None
