"""HTTP captures of LLM API traffic: HAR 1.2 files (browser devtools, mitmproxy, Polly.js) and nock
recordings (JSON arrays of `{scope, method, path, body, status, response, rawHeaders}`).

A HAR file is one record holding many calls (`log.entries[]`): each LLM call becomes a row; other
traffic (image generation, rerank, embeddings, non-API URLs) is listed as skipped items. Each nock
array element is one record.

What the capture adds over a bare body: the HTTP status, the URL (which says the API surface and
the provider, e.g. Bedrock InvokeModel's vendor from the model id in the path), timings
(`startedDateTime`, `time`, `timings.wait` = time to first byte) and response headers (request ids,
`x-amzn-bedrock-*-token-count` usage for bodies without any). Bodies are decoded from base64,
gzip (also nock's arrays of hex-encoded gzip chunks), SSE text and AWS event-stream binary.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import gzip
import re
import zlib
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson

from pipeline.ingest.bodies import is_error_body, parse_bodies
from pipeline.ingest.bodies.bedrock import bedrock_header_usage, vendor_hint
from pipeline.ingest.bodies.streams import decode_stream_body, reduce_events
from pipeline.ingest.formats import Context, record_format
from pipeline.ingest.formats.bedrock_agent import agent_call_row
from pipeline.ingest.rows import (
    RecordError,
    Row,
    Skip,
    as_float,
    as_int,
    as_str,
    bounded,
    dumps,
    make_row,
    parse_ts,
)

# (path pattern, body format hint, endpoint); first match wins.
_ROUTES: tuple[tuple[re.Pattern, str | None, str], ...] = tuple(
    (re.compile(p), hint, endpoint)
    for p, hint, endpoint in (
        (r"/chat/completions$", "openai_chat", "chat.completions"),
        (r"/v1/completions$|/completions$", "openai_completions", "completions"),
        (r"/responses$", "openai_responses", "responses"),
        (r"/v1/messages$", "anthropic_messages", "messages"),
        (r"/v1/complete$", "anthropic_text_completion", "complete"),
        (r"/model/[^/]+/converse(-stream)?$", "bedrock_converse", "converse"),
        (r"/model/[^/]+/invoke(-with-response-stream)?$", None, "invoke"),
        (r"/agents/[^/]+/agentAliases/[^/]+/sessions/[^/]+/text$", None, "invoke_agent"),
        (r":(stream)?[gG]enerateContent$", "gemini_generate_content", "generate_content"),
        (r"/v1beta/interactions$|/interactions$", "gemini_interaction", "interactions"),
        (r"/v2/chat$", "cohere_chat_v2", "chat"),
        (r"/v1/chat$", "cohere_chat_v1", "chat"),
        (r"/v1/generate$", "cohere_generate", "generate"),
    )
)
# API calls that are not text generation: recorded as skipped, not stored as LLM calls.
_NOT_GENERATION = re.compile(r"/(images|embeddings?|embed|rerank|moderations|audio|files|batches|models|fine_tuning|vector_stores|tokenize|detokenize)(/|$)")
_HOSTS = (
    ("api.openai.com", "openai"),
    ("openai.azure.com", "azure"),
    ("api.anthropic.com", "anthropic"),
    ("bedrock-runtime", "bedrock"),
    ("api.cohere.", "cohere"),
    ("api.together.", "together"),
    ("generativelanguage.googleapis.com", "google"),
    ("aiplatform.googleapis.com", "google"),
    ("api.groq.com", "groq"),
    ("api.deepseek.com", "deepseek"),
    ("api.x.ai", "xai"),
    ("api.mistral.ai", "mistral"),
    ("api.perplexity.ai", "perplexity"),
    ("openrouter.ai", "openrouter"),
    ("api.fireworks.ai", "fireworks"),
    ("dashscope", "alibaba"),
)


def _provider(host: str) -> str | None:
    return next((p for h, p in _HOSTS if h in host), None)


def _headers(raw: Any) -> dict[str, str]:
    """HAR `[{name, value}]`, nock `{name: value}` or nock `[name, value, name, value, …]`."""
    out: dict[str, str] = {}
    if isinstance(raw, dict):
        out = {str(k).lower(): as_str(v) or "" for k, v in raw.items()}
    elif isinstance(raw, list):
        if all(isinstance(h, dict) for h in raw):
            out = {str(h.get("name", "")).lower(): as_str(h.get("value")) or "" for h in raw}
        else:
            out = {str(k).lower(): as_str(v) or "" for k, v in zip(raw[::2], raw[1::2], strict=False)}
    return out


def _decompress(data: bytes, encoding: str) -> bytes:
    if data[:2] == b"\x1f\x8b" or "gzip" in encoding:
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            return data
    if "deflate" in encoding:
        try:
            return zlib.decompress(data)
        except zlib.error:
            return data
    return data


def _json(text: str | bytes | None) -> Any:
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def _decoded(body: Any, content_type: str, headers: Mapping[str, str]) -> tuple[Any, bool]:
    """(response body: parsed JSON object, list of stream events, or text/bytes, is_stream)."""
    if isinstance(body, bytes):
        events = decode_stream_body(body, content_type)
        if events is not None:
            return events, True
        text = body.decode("utf-8", "replace")
        value = _json(text)
        return (value if value is not None else text), False
    if isinstance(body, str):
        events = decode_stream_body(body, content_type)
        if events is not None:
            return events, True
        value = _json(body)
        if value is None and "\n" in body.strip():
            lines = [_json(x) for x in body.splitlines() if x.strip()]
            if lines and all(isinstance(x, dict) for x in lines):  # JSON-lines stream without its content type
                return lines, True
        return (value if value is not None else body), False
    return body, False


def _exchange_time(started: Any, headers: Mapping[str, str]) -> datetime | None:
    """When the exchange happened: the capture's start time, else the response's `Date` header."""
    ts = parse_ts(started) if isinstance(started, str | int | float) else None
    if ts is None and headers.get("date"):
        try:
            ts = email.utils.parsedate_to_datetime(headers["date"]).astimezone(UTC)
        except (TypeError, ValueError):
            ts = None
    return ts


def call_row(
    ctx: Context,
    *,
    method: str,
    url: str,
    request_body: Any,
    status: int | None,
    response_body: Any,
    response_headers: Mapping[str, str],
    content_type: str,
    started: Any = None,
    total_ms: float | None = None,
    wait_ms: float | None = None,
    request_id: str | None = None,
    label: str,
) -> Row:
    """One captured HTTP exchange -> a row; raises Skip when it is not an LLM generation call."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    if _NOT_GENERATION.search(path) and not any(p.search(path) for p, _, _ in _ROUTES):  # Gemini: /models/x:generateContent
        raise Skip("not_a_text_generation_call", f"{label}: {method} {parts.netloc}{path}")
    route = next(((hint, endpoint) for pattern, hint, endpoint in _ROUTES if pattern.search(path)), (None, None))
    hint, endpoint = route
    model_id = None
    m = re.search(r"/model/([^/]+)/", path)
    if m:
        model_id = m.group(1)
        if endpoint == "invoke":
            hint = vendor_hint(model_id)
    req = request_body if isinstance(request_body, dict) else _json(request_body) if isinstance(request_body, str | bytes) else None
    if req is not None and not isinstance(req, dict):
        req = None
    resp, streamed = _decoded(response_body, content_type, response_headers)
    extras: Row = {}
    if endpoint == "invoke_agent":
        return agent_call_row(path, request_body, resp if streamed else [], status, response_headers, label,
                              ts=_exchange_time(started, response_headers), total_ms=total_ms)
    if streamed:
        resp, extras = reduce_events(resp)
    if endpoint is None and req is None and not isinstance(resp, dict):
        raise Skip("not_an_llm_api_call", f"{label}: {method} {parts.netloc}{path}")
    ok = status is None or status < 400
    fields: Row = {}
    body_resp = resp if isinstance(resp, dict) else None
    try:
        fields = parse_bodies(req, body_resp if ok or (body_resp and is_error_body(body_resp)) else None, hint=hint)
    except RecordError:
        try:  # the two sides may be in different shapes (a gateway translating), or one unreadable
            fields = {**(parse_bodies(req, None, hint=hint) if req else {}), **(parse_bodies(None, body_resp) if body_resp else {})}
        except RecordError:
            if endpoint is None:
                raise Skip("not_an_llm_api_call", f"{label}: {method} {parts.netloc}{path}: bodies not recognized") from None
            fields = {}
    if not ok:
        err_text = None
        if body_resp is not None:
            err_text = as_str((body_resp.get("error") or {}).get("message") if isinstance(body_resp.get("error"), dict)
                              else body_resp.get("message") or body_resp.get("Message") or body_resp.get("error"))
        elif isinstance(resp, str | bytes):
            err_text = resp if isinstance(resp, str) else resp.decode("utf-8", "replace")
        fields.update(
            finish_reason="error",
            error_type=fields.get("error_type") or as_str(response_headers.get("x-amzn-errortype", "").split(":")[0] or None) or f"http_{status}",
            error_message=bounded(err_text) or fields.get("error_message"),
            response_text=None,
        )
    if fields.get("usage_missing") is not False:
        header_usage = bedrock_header_usage(response_headers)
        if header_usage:
            fields.update({k: v for k, v in header_usage.items() if k != "latency_ms"})
        if extras.get("usage_missing") is False:
            fields.update({k: v for k, v in extras.items() if k.startswith(("in_", "out_", "usage_"))})
    server_ms = as_float(response_headers.get("openai-processing-ms")) or as_float(response_headers.get("x-amzn-bedrock-invocation-latency"))
    latency = total_ms if total_ms is not None and total_ms >= 0 else (server_ms if server_ms is not None else extras.get("latency_ms") or fields.get("latency_ms"))
    ttft = wait_ms if streamed and wait_ms is not None and wait_ms >= 0 else extras.get("ttft_ms")
    ts = _exchange_time(started, response_headers)
    host_provider = _provider(parts.netloc)
    if not fields.get("model") and model_id:
        fields["model"] = model_id
    fields.setdefault("endpoint", endpoint)
    meta = {"url": f"{parts.scheme}://{parts.netloc}{path}", "server_processing_ms": server_ms}
    return make_row(
        fields,
        record=[label, method, url, request_body, status],
        request_id=request_id
        or response_headers.get("x-request-id")
        or response_headers.get("request-id")
        or response_headers.get("x-amzn-requestid"),
        ts=ts,
        provider=host_provider,
        endpoint=endpoint,
        status_code=status,
        is_stream=streamed,
        latency_ms=latency,
        ttft_ms=ttft,
        metadata_json=dumps({k: v for k, v in meta.items() if v is not None}),
    )


# --- HAR ----------------------------------------------------------------------------------------


def _is_har(rec: Mapping[str, Any]) -> bool:
    log = rec.get("log")
    return isinstance(log, dict) and isinstance(log.get("entries"), list)


def _har_body(content: Mapping[str, Any], headers: Mapping[str, str]) -> Any:
    text = content.get("text")
    if text is None:
        return None
    encoding = headers.get("content-encoding", "")
    if content.get("encoding") == "base64":
        # Polly.js stores a chunked body as a JSON array of base64 chunks (gzip across chunks).
        chunks = _json(text) if text.lstrip().startswith("[") else None
        parts = chunks if isinstance(chunks, list) and all(isinstance(c, str) for c in chunks) else [text]
        try:
            data = b"".join(base64.b64decode(c) for c in parts)
        except (binascii.Error, ValueError):
            return text
        return _decompress(data, encoding)
    return text


@record_format(
    "har",
    "HAR 1.2 capture (`log.entries[]` of request/response/timings); one row per LLM API call, base64/gzip/SSE bodies decoded",
    _is_har,
    order=10,
)
def parse_har(rec: Mapping[str, Any], ctx: Context) -> list[Row]:
    return call_rows(ctx, rec["log"]["entries"], "entry", _har_call, "HAR file without entries")


def _har_call(e: Any, label: str, ctx: Context) -> Row:
    if not isinstance(e, dict) or not isinstance(e.get("request"), dict):
        raise Skip("malformed_record", f"{label}: no `request` object")
    req, resp = e["request"], e.get("response") if isinstance(e.get("response"), dict) else {}
    headers = _headers(resp.get("headers"))
    content = resp.get("content") if isinstance(resp.get("content"), dict) else {}
    post = req.get("postData") if isinstance(req.get("postData"), dict) else {}
    timings = e.get("timings") if isinstance(e.get("timings"), dict) else {}
    return call_row(
        ctx,
        method=as_str(req.get("method")) or "",
        url=as_str(req.get("url")) or "",
        request_body=post.get("text"),
        status=as_int(resp.get("status")),
        response_body=_har_body(content, headers),
        response_headers=headers,
        content_type=as_str(content.get("mimeType")) or headers.get("content-type", ""),
        started=e.get("startedDateTime"),
        total_ms=as_float(e.get("time")),
        wait_ms=as_float(timings.get("wait")),
        label=label,
    )


def call_rows(ctx: Context, items: Iterable[Any], noun: str, build: Callable[[Any, str, Context], Row],
              empty: str) -> list[Row]:
    """One row per item of a capture (HAR entry, cassette interaction) that is an LLM call.

    One bad item must not lose the capture's other calls: it is listed as a skipped item and the
    rest kept. With no call at all the whole record is skipped, for the first item's reason.
    `source_line` is the item's number within the capture.
    """
    rows: list[Row] = []
    skipped: list[Skip] = []
    for i, item in enumerate(items, start=1):
        label = f"{noun} {i}"
        try:
            row = build(item, label, ctx)
        except Skip as skip:
            skipped.append(skip)
            continue
        except (RecordError, TypeError, ValueError, KeyError, AttributeError) as err:
            detail = err.detail if isinstance(err, RecordError) else f"{type(err).__name__}: {err}"
            skipped.append(Skip("malformed_record", f"{label}: {detail}"))
            continue
        row["source_line"] = i
        rows.append(row)
    if not rows:
        reasons = sorted({s.reason for s in skipped}) or ["empty_capture"]
        raise Skip(reasons[0], "; ".join(s.detail for s in skipped)[:900] or empty)
    for skipped_item in skipped:
        ctx.skip_item(skipped_item.reason, skipped_item.detail)
    return rows


# --- nock ---------------------------------------------------------------------------------------


def _is_nock(rec: Mapping[str, Any]) -> bool:
    return "scope" in rec and "method" in rec and "path" in rec and "status" in rec


def _nock_body(response: Any, headers: Mapping[str, str], binary: bool) -> Any:
    encoding = headers.get("content-encoding", "")
    if isinstance(response, list) and response and all(isinstance(x, str) for x in response):
        try:  # nock stores a compressed body as hex chunks
            return _decompress(bytes.fromhex("".join(response)), encoding)
        except ValueError:
            return "".join(response)
    if isinstance(response, str) and (binary or re.fullmatch(r"(?:[0-9a-f]{2}){8,}", response[:4096] or "")):
        try:
            return _decompress(bytes.fromhex(response), encoding)
        except ValueError:
            return response
    return response


@record_format(
    "nock",
    "nock recording entry: `scope` + `method` + `path` + `status` + `response` (JSON, SSE text or gzip hex chunks)",
    _is_nock,
    order=40,
)
def parse_nock(rec: Mapping[str, Any], ctx: Context) -> list[Row]:
    headers = _headers(rec.get("rawHeaders") or rec.get("headers"))
    url = f"{as_str(rec.get('scope')) or ''}{as_str(rec.get('path')) or ''}"
    return [call_row(
        ctx,
        method=as_str(rec.get("method")) or "",
        url=url,
        request_body=rec.get("body"),
        status=as_int(rec.get("status")),
        response_body=_nock_body(rec.get("response"), headers, bool(rec.get("responseIsBinary"))),
        response_headers=headers,
        content_type=headers.get("content-type", ""),
        label=f"nock entry {ctx.source_line}",
    )]
