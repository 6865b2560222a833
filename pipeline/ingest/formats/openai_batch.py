"""OpenAI Batch API files (formats.md §c): input lines and output/error lines, joined by `custom_id`.

Output order is not input order and the two live in different files; the join (and its rules for
repeated custom_ids and unpaired lines) is in `batch_join`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pipeline.ingest.bodies import parse_bodies
from pipeline.ingest.formats import Context, record_format
from pipeline.ingest.formats.batch_join import pairs, pend
from pipeline.ingest.rows import RecordError, Row, as_int, as_str, bounded, make_row

NAME = "openai_batch"
_URL_HINT = {"/v1/chat/completions": "openai_chat", "/v1/responses": "openai_responses"}


def _is_input(rec: Mapping[str, Any]) -> bool:
    return "custom_id" in rec and "body" in rec and ("url" in rec or "method" in rec)


def _is_output(rec: Mapping[str, Any]) -> bool:
    return "custom_id" in rec and ("response" in rec or "error" in rec) and "result" not in rec


@record_format(
    "openai_batch_input",
    "OpenAI Batch input line: `custom_id` + `method`/`url` + `body` (joined with its output line by custom_id)",
    _is_input,
    finish=lambda ctx: _finish(ctx),
    order=20,
)
def parse_input(rec: Mapping[str, Any], ctx: Context) -> list[Row]:
    if not isinstance(rec.get("body"), dict):
        raise RecordError("wrong_type", "batch input `body` is not an object")
    pend(ctx, NAME, "requests", rec)
    return []


@record_format(
    "openai_batch_output",
    "OpenAI Batch output/error line: `custom_id` + `response{status_code, body}` or `error`",
    _is_output,
    order=20,
)
def parse_output(rec: Mapping[str, Any], ctx: Context) -> list[Row]:
    resp = rec.get("response")
    if resp is not None and not isinstance(resp, dict):
        raise RecordError("wrong_type", "batch output `response` is not an object")
    pend(ctx, NAME, "results", rec)
    return []


def _joined(inp: Mapping[str, Any] | None, out: Mapping[str, Any] | None, src: tuple[str, int]) -> Row:
    body = inp.get("body") if inp else None
    url = as_str(inp.get("url")) if inp else None
    resp = out.get("response") if out else None
    resp_body = resp.get("body") if isinstance(resp, dict) else None
    if isinstance(resp_body, str):
        resp_body = None
    if body is None and resp_body is None:
        # An error line whose request is not in this run (it may be in the store: the writer
        # completes that row): nothing to parse, but still an OpenAI call that failed.
        fields: dict[str, Any] = {"provider": "openai", "endpoint": None, "model": None}
    else:
        fields = parse_bodies(body, resp_body, hint=_URL_HINT.get(url or ""))
    overrides: dict[str, Any] = {}
    if isinstance(resp, dict):
        status = as_int(resp.get("status_code"))
        overrides["status_code"] = status
        if status and status >= 400:
            overrides["finish_reason"] = "error"
    err = out.get("error") if out else None
    if isinstance(err, dict):
        overrides.update(
            finish_reason="error",
            error_type=as_str(err.get("code") or err.get("type")) or "error",
            error_message=bounded(as_str(err.get("message"))),
        )
    cid = as_str((out or inp or {}).get("custom_id"))
    return make_row(
        fields,
        record=[inp, out],
        request_id=cid,
        is_batch=True,
        is_stream=False,
        source_format="openai_batch",
        source_file=src[0],
        source_line=src[1],
        **overrides,
    )


def _finish(ctx: Context) -> Iterator[Row]:
    for inp, out, src in pairs(ctx, NAME):
        yield from _safe(ctx, inp, out, src)


def _safe(ctx: Context, inp: Mapping[str, Any] | None, out: Mapping[str, Any] | None, src: tuple[str, int]) -> Iterator[Row]:
    try:
        yield _joined(inp, out, src)
    except RecordError as e:
        ctx.reject(src[0], src[1], e.reason, e.detail)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as e:
        ctx.reject(src[0], src[1], "malformed_record", f"{type(e).__name__}: {e}")
