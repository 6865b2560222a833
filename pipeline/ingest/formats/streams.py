"""Streamed responses stored as one chunk/event per line (OpenAI chat chunks, Anthropic events,
Responses API events, Bedrock ConverseStream events, Gemini stream chunks, Cohere stream events).

The chunks of one stream become ONE row: they are collected per file and reduced to the
equivalent non-streamed body (`bodies.streams`). A stream is emitted when its terminal event
arrives (OpenAI's usage chunk, `message_stop`, `response.completed`, Bedrock `metadata`, Gemini's
`finishReason`), or when the file ends (an interrupted stream: usage then stays missing, not 0).
OpenAI and Gemini chunks carry their stream's id, so interleaved streams are told apart; the other
providers' events carry none after the first, so their events belong to the stream open in that file.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pipeline.ingest.bodies import parse_bodies
from pipeline.ingest.bodies.streams import reduce_events, stream_family
from pipeline.ingest.formats import Context, record_format
from pipeline.ingest.rows import RecordError, Row, as_str, make_row

NAME = "stream_chunks"
_FAMILIES = ("openai_chat", "anthropic", "openai_responses", "bedrock_converse", "gemini", "cohere_v1", "cohere_v2")
_TERMINAL_RESPONSES = ("response.completed", "response.failed", "response.incomplete")


def _is_chunk(rec: Mapping[str, Any]) -> bool:
    # A lone `{"type": "error", "error": {…}}` is Anthropic's (non-streamed) error body too: it is
    # left to `api_error_body`, and a stream it interrupted ends as a cut stream.
    return stream_family(rec) in _FAMILIES and not (rec.get("type") == "error" and "sequence_number" not in rec)


_ID_LESS = ("anthropic", "bedrock_converse", "cohere_v1", "cohere_v2")


def _key(family: str, rec: Mapping[str, Any], st: dict) -> tuple:
    if family == "openai_chat" and rec.get("id"):
        return (family, rec["id"])
    if family == "gemini" and rec.get("responseId"):
        return (family, rec["responseId"])
    current = st.setdefault("current", {})
    if family == "openai_responses":
        rid = rec["response"].get("id") if isinstance(rec.get("response"), dict) else None
        if rid:
            current[family] = (family, rid)
            return current[family]
    starts = (
        (family == "anthropic" and rec.get("type") == "message_start")
        or (family == "bedrock_converse" and "messageStart" in rec)
        or (family == "cohere_v2" and rec.get("type") == "message-start")
        or (family == "cohere_v1" and rec.get("event_type") == "stream-start")
    )
    if starts or family not in current:
        st["seq"] = st.get("seq", 0) + 1
        current[family] = (family, f"#{st['seq']}")
    return current[family]


def _terminal(family: str, rec: Mapping[str, Any]) -> bool:
    if family == "openai_chat":
        return isinstance(rec.get("usage"), dict) or isinstance((rec.get("x_groq") or {}).get("usage"), dict)
    if family == "anthropic":
        return rec.get("type") in ("message_stop", "error")
    if family == "openai_responses":
        return rec.get("type") in _TERMINAL_RESPONSES
    if family == "bedrock_converse":
        return "metadata" in rec
    if family == "gemini":
        cands = rec.get("candidates") or []
        return bool(cands) and all(isinstance(c, dict) and c.get("finishReason") for c in cands)
    if family == "cohere_v2":
        return rec.get("type") == "message-end"
    return family == "cohere_v1" and bool(rec.get("is_finished"))


def _row(ctx: Context, key: tuple, stream: dict) -> Row:
    events = stream["events"]
    body, extras = reduce_events(events)
    if body is None:
        raise RecordError("unknown_stream", f"events of stream {key[1]} could not be reduced")
    fields = parse_bodies(None, body)
    family = key[0]
    # A Gemini "stream" of one complete chunk is indistinguishable from a plain response.
    streamed = family != "gemini" or len(events) > 1 or not _terminal(family, events[0])
    overrides = {k: v for k, v in extras.items() if k in ("latency_ms", "ttft_ms") and fields.get(k) is None}
    if fields.get("usage_missing") is not False and extras.get("usage_missing") is False:
        overrides.update({k: v for k, v in extras.items() if k.startswith(("in_", "out_", "usage_"))})
    return make_row(
        fields,
        record=[ctx.source_file, stream["line"], as_str(key[1])],
        is_stream=streamed,
        source_format=NAME if streamed else "provider_body",
        source_file=ctx.source_file,
        source_line=stream["line"],
        **overrides,
    )


def _emit(ctx: Context, st: dict, key: tuple) -> Iterator[Row]:
    stream = st["open"].pop(key)
    try:
        yield _row(ctx, key, stream)
    except (RecordError, TypeError, ValueError, KeyError, AttributeError, IndexError) as e:
        # The chunks were valid one by one; the assembled stream is what failed.
        detail = e.detail if isinstance(e, RecordError) else f"{type(e).__name__}: {e}"
        ctx.skip_item(getattr(e, "reason", "malformed_record"), f"stream starting at line {stream['line']}: {detail}")


@record_format(
    NAME,
    "stream chunks/events one per line (OpenAI `chat.completion.chunk`, Anthropic `message_start`…, Responses `response.*`, "
    "Bedrock `contentBlockDelta`…, Gemini chunks): one row per stream",
    _is_chunk,
    order=50,
    finish_file=lambda ctx: _finish_file(ctx),
)
def parse_chunk(rec: Mapping[str, Any], ctx: Context) -> list[Row]:
    family = stream_family(rec) or ""
    st = ctx.file_state(NAME)
    opened = st.setdefault("open", {})
    key = _key(family, rec, st)
    out: list[Row] = []
    if key not in opened:
        if family in _ID_LESS:
            # A new stream of an id-less family while another is open: the earlier one was cut.
            for other in [k for k in opened if k[0] == family]:
                out += _emit(ctx, st, other)
        opened[key] = {"line": ctx.source_line, "events": []}
    opened[key]["events"].append(rec)
    if _terminal(family, rec):
        out += _emit(ctx, st, key)
    return out


def _finish_file(ctx: Context) -> Iterator[Row]:
    st = ctx.local.get(NAME, {}).get(ctx.source_file)
    if not st:
        return
    for key in sorted(st.get("open", {}), key=lambda k: st["open"][k]["line"]):
        yield from _emit(ctx, st, key)
