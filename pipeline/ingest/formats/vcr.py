"""VCR cassettes (vcrpy, pytest-recording, VCR.py-style YAML): how pydantic-ai, LangChain, LangSmith,
OpenTelemetry contrib, openinference and crewAI record real API calls for their tests.

A cassette is one YAML document `{interactions: [{request: {method, uri, body, headers},
response: {status: {code}, headers, body: {string}}}], version}`; each LLM interaction becomes a
row through the same HTTP-exchange reader as HAR files, and other traffic (embeddings, tracing
uploads) is listed as skipped items. Bodies are text, `!!binary` bytes (often gzip, decoded by
`Content-Encoding`) or, in some custom serializers, an already-parsed `parsed_body`. Headers are
lists of values. The response's `Date` header gives the time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.ingest.formats import Context, record_format
from pipeline.ingest.formats.http_captures import _decompress, call_row, call_rows
from pipeline.ingest.rows import Row, Skip, as_int, as_str

NAME = "vcr_cassette"


def _is_cassette(rec: Mapping[str, Any]) -> bool:
    items = rec.get("interactions")
    return isinstance(items, list) and "version" in rec and all(
        isinstance(i, dict) and "request" in i for i in items[:3]
    )


def _headers(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        return {}
    out = {}
    for k, v in raw.items():
        values = v if isinstance(v, list) else [v]
        out[str(k).lower()] = ", ".join(as_str(x) or "" for x in values)
    return out


def _body(body: Any, headers: Mapping[str, str]) -> Any:
    if isinstance(body, dict):
        if "parsed_body" in body:
            return body["parsed_body"]
        body = body.get("string")
    if isinstance(body, bytes):
        return _decompress(body, headers.get("content-encoding", ""))
    return body


def _text(body: Any) -> Any:
    return body.decode("utf-8", "replace") if isinstance(body, bytes) else body


@record_format(
    NAME,
    "VCR / pytest-recording YAML cassette (`interactions[].request/response` + `version`): one row per LLM API call; "
    "gzip `!!binary`, SSE and JSON bodies decoded, other traffic skipped",
    _is_cassette,
    order=10,
)
def parse_cassette(rec: Mapping[str, Any], ctx: Context) -> list[Row]:
    return call_rows(ctx, rec["interactions"], "interaction", _cassette_call, "cassette without interactions")


def _cassette_call(item: Any, label: str, ctx: Context) -> Row:
    req = item.get("request") if isinstance(item, dict) else None
    resp = item.get("response") if isinstance(item, dict) and isinstance(item.get("response"), dict) else {}
    if not isinstance(req, dict):
        raise Skip("malformed_record", f"{label}: no `request` mapping")
    req_headers, resp_headers = _headers(req.get("headers")), _headers(resp.get("headers"))
    status = resp.get("status")
    return call_row(
        ctx,
        method=as_str(req.get("method")) or "",
        url=as_str(req.get("uri") or req.get("url")) or "",
        request_body=_text(_body(req.get("body"), req_headers)),
        status=as_int(status.get("code") if isinstance(status, dict) else status),
        response_body=_body(resp.get("body"), resp_headers),
        response_headers=resp_headers,
        content_type=resp_headers.get("content-type", ""),
        label=label,
    )
