"""Anthropic Message Batches (formats.md §d): request lines `{custom_id, params}` and result lines
`{custom_id, result: {type: succeeded|errored|canceled|expired, message|error}}`, joined by
`custom_id` within one folder and batch file stem (results are not in request order).

Unpaired lines wait in run state and are emitted at the end of the run: a request without a
result (still processing, or results not exported), or a result whose request file was not given.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pipeline.ingest.bodies import parse_bodies
from pipeline.ingest.formats import Context, record_format
from pipeline.ingest.formats.openai_batch import batch_group
from pipeline.ingest.rows import RecordError, Row, as_str, bounded, get_path, make_row

NAME = "anthropic_batch"
_RESULT_TYPES = ("succeeded", "errored", "canceled", "expired")


def _is_request(rec: Mapping[str, Any]) -> bool:
    return "custom_id" in rec and isinstance(rec.get("params"), Mapping) and "result" not in rec


def _is_result(rec: Mapping[str, Any]) -> bool:
    return "custom_id" in rec and isinstance(rec.get("result"), Mapping) and rec["result"].get("type") in _RESULT_TYPES


def _state(ctx: Context) -> dict[str, dict]:
    st = ctx.format_state(NAME)
    st.setdefault("requests", {})
    st.setdefault("results", {})
    return st


def _joined(req: Mapping[str, Any] | None, res: Mapping[str, Any] | None, src: tuple[str, int]) -> Row:
    params = req.get("params") if req else None
    result = res.get("result") if res else None
    rtype = as_str(result.get("type")) if isinstance(result, Mapping) else None
    message = result.get("message") if rtype == "succeeded" else None
    fields = parse_bodies(params, message, hint="anthropic_messages")
    overrides: dict[str, Any] = {}
    if rtype == "errored":
        err = get_path(result, "error", "error") or result.get("error") or {}
        overrides = {
            "finish_reason": "error",
            "error_type": as_str(err.get("type")) if isinstance(err, Mapping) else "errored",
            "error_message": bounded(as_str(err.get("message"))) if isinstance(err, Mapping) else None,
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


def _pair(rec: Mapping[str, Any], ctx: Context, mine: str, other: str) -> list[Row]:
    cid = as_str(rec.get("custom_id"))
    if not cid:
        raise RecordError("missing_field", "batch line has an empty `custom_id`")
    st = _state(ctx)
    key = (*batch_group(ctx), cid)
    src = (ctx.source_file, ctx.source_line)
    if key in st[other]:
        partner, partner_src = st[other].pop(key)
        req, res = (rec, partner) if mine == "requests" else (partner, rec)
        return [_joined(req, res, src if mine == "results" else partner_src)]
    st[mine][key] = (dict(rec), src)
    return []


@record_format(
    "anthropic_batch_request",
    "Anthropic Message Batch request line: `custom_id` + `params` (a Messages body); joined with its result by custom_id",
    _is_request,
    finish=lambda ctx: _finish(ctx),
    order=20,
)
def parse_request(rec: Mapping[str, Any], ctx: Context) -> list[Row]:
    return _pair(rec, ctx, "requests", "results")


@record_format(
    "anthropic_batch_result",
    "Anthropic Message Batch result line: `custom_id` + `result{type: succeeded|errored|canceled|expired}`",
    _is_result,
    order=20,
)
def parse_result(rec: Mapping[str, Any], ctx: Context) -> list[Row]:
    return _pair(rec, ctx, "results", "requests")


def _finish(ctx: Context) -> Iterator[Row]:
    st = _state(ctx)
    requests, results = st["requests"], st["results"]
    # Second chance: pair leftovers by (folder, custom_id) when the file stems did not line up.
    by_folder: dict[tuple[str, str], list[tuple]] = {}
    for key in requests:
        by_folder.setdefault((key[0], key[2]), []).append(key)
    for rkey in sorted(results):
        cands = by_folder.get((rkey[0], rkey[2]), [])
        if len(cands) == 1 and cands[0] in requests:
            req, _ = requests.pop(cands[0])
            res, src = results.pop(rkey)
            yield from _safe(ctx, req, res, src)
    for key in sorted(results):
        res, src = results.pop(key)
        yield from _safe(ctx, None, res, src)
    for key in sorted(requests):
        req, src = requests.pop(key)
        yield from _safe(ctx, req, None, src)


def _safe(ctx: Context, req: Mapping[str, Any] | None, res: Mapping[str, Any] | None, src: tuple[str, int]) -> Iterator[Row]:
    try:
        yield _joined(req, res, src)
    except RecordError as e:
        ctx.reject(src[0], src[1], e.reason, e.detail)
