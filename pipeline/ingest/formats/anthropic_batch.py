"""Anthropic Message Batches (formats.md §d): request lines `{custom_id, params}` and result lines
`{custom_id, result: {type: succeeded|errored|canceled|expired, message|error}}`, joined by
`custom_id` (results are not in request order; the join is in `batch_join`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pipeline.ingest.bodies import parse_bodies
from pipeline.ingest.formats import Context, record_format
from pipeline.ingest.formats.batch_join import pairs, pend
from pipeline.ingest.rows import RecordError, Row, as_str, bounded, get_path, make_row

NAME = "anthropic_batch"
_RESULT_TYPES = ("succeeded", "errored", "canceled", "expired")


def _is_request(rec: Mapping[str, Any]) -> bool:
    return "custom_id" in rec and isinstance(rec.get("params"), dict) and "result" not in rec


def _is_result(rec: Mapping[str, Any]) -> bool:
    return "custom_id" in rec and isinstance(rec.get("result"), dict) and rec["result"].get("type") in _RESULT_TYPES


def _joined(req: Mapping[str, Any] | None, res: Mapping[str, Any] | None, src: tuple[str, int]) -> Row:
    params = req.get("params") if req else None
    result = res.get("result") if res else None
    rtype = as_str(result.get("type")) if isinstance(result, dict) else None
    message = result.get("message") if rtype == "succeeded" else None
    fields = parse_bodies(params, message, hint="anthropic_messages")
    overrides: dict[str, Any] = {}
    if rtype == "errored":
        err = get_path(result, "error", "error") or result.get("error") or {}
        overrides = {
            "finish_reason": "error",
            "error_type": as_str(err.get("type")) if isinstance(err, dict) else "errored",
            "error_message": bounded(as_str(err.get("message"))) if isinstance(err, dict) else None,
            "response_id": as_str(get_path(result, "error", "request_id")),
        }
    elif rtype in ("canceled", "expired"):
        overrides = {"finish_reason": "error", "error_type": f"batch_{rtype}"}
    return make_row(
        fields,
        record=[req, res],
        request_id=as_str((res or req or {}).get("custom_id")),
        is_batch=True,
        is_stream=False,
        source_format=NAME,
        source_file=src[0],
        source_line=src[1],
        **overrides,
    )


@record_format(
    "anthropic_batch_request",
    "Anthropic Message Batch request line: `custom_id` + `params` (a Messages body); joined with its result by custom_id",
    _is_request,
    finish=lambda ctx: _finish(ctx),
    order=20,
)
def parse_request(rec: Mapping[str, Any], ctx: Context) -> list[Row]:
    pend(ctx, NAME, "requests", rec)
    return []


@record_format(
    "anthropic_batch_result",
    "Anthropic Message Batch result line: `custom_id` + `result{type: succeeded|errored|canceled|expired}`",
    _is_result,
    order=20,
)
def parse_result(rec: Mapping[str, Any], ctx: Context) -> list[Row]:
    pend(ctx, NAME, "results", rec)
    return []


def _finish(ctx: Context) -> Iterator[Row]:
    for req, res, src in pairs(ctx, NAME):
        yield from _safe(ctx, req, res, src)


def _safe(ctx: Context, req: Mapping[str, Any] | None, res: Mapping[str, Any] | None, src: tuple[str, int]) -> Iterator[Row]:
    try:
        yield _joined(req, res, src)
    except RecordError as e:
        ctx.reject(src[0], src[1], e.reason, e.detail)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as e:
        ctx.reject(src[0], src[1], "malformed_record", f"{type(e).__name__}: {e}")
