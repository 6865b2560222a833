"""Streamed responses: decode the wire forms (SSE text, JSON lines, AWS event-stream binary) and
reduce a stream's events to the equivalent non-streamed response body, so the ordinary body
parsers read it.

Reduction rules (formats.md §a, §b, §d, §e): text and tool-call arguments are concatenated per
choice/block; the finish reason is the last one given; usage is taken from wherever the provider
puts it (OpenAI: the final `choices: []` chunk, only with `include_usage`; Anthropic: input side in
`message_start`, final totals in the last `message_delta`; Responses: the terminal event's
`response`; Bedrock: the `metadata` event or `amazon-bedrock-invocationMetrics`; Gemini: the last
chunk's cumulative `usageMetadata`). A stream without usage yields a body without usage, so the
row says `usage_missing`, never zero.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from pipeline.ingest.bodies.bedrock import invocation_metrics_usage
from pipeline.ingest.rows import Row, as_int

ANTHROPIC_EVENTS = frozenset(
    {"message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop", "ping"}
)
CONVERSE_EVENTS = frozenset(
    {"messageStart", "contentBlockStart", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata"}
)
COHERE_V2_EVENTS = frozenset(
    {"message-start", "content-start", "content-delta", "content-end", "tool-plan-delta", "tool-call-start",
     "tool-call-delta", "tool-call-end", "citation-start", "citation-end", "message-end", "debug"}
)
_METRICS = "amazon-bedrock-invocationMetrics"
_RESPONSES_STATUS = {"response.completed": "completed", "response.failed": "failed", "response.incomplete": "incomplete"}


# --- wire decoding ------------------------------------------------------------------------------


def decode_sse(text: str) -> list[Any]:
    """JSON payloads of a `text/event-stream` body (`event:`/`data:` blocks; `[DONE]` dropped)."""
    events: list[Any] = []
    data: list[str] = []
    event_name: str | None = None

    def flush() -> None:
        nonlocal data, event_name
        if data:
            payload = "\n".join(data).strip()
            if payload and payload != "[DONE]":
                try:
                    value = orjson.loads(payload)
                except orjson.JSONDecodeError:
                    value = None
                if isinstance(value, dict) and event_name and "type" not in value and event_name != "message":
                    value = {"type": event_name, **value}
                if value is not None:
                    events.append(value)
        data, event_name = [], None

    for line in text.splitlines():
        if not line.strip():
            flush()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif line.startswith("event:"):
            event_name = line[6:].strip()
    flush()
    return events


def decode_json_lines(text: str) -> list[Any]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line:
            try:
                out.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
    return out


def _eventstream_headers(raw: bytes) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    i = 0
    sizes = {2: 1, 3: 2, 4: 4, 5: 8, 8: 8, 9: 16}
    while i < len(raw):
        n = raw[i]
        name = raw[i + 1 : i + 1 + n].decode("utf-8", "replace")
        i += 1 + n
        vtype = raw[i]
        i += 1
        if vtype in (0, 1):
            headers[name] = vtype == 0
        elif vtype in (6, 7):
            (length,) = struct.unpack(">H", raw[i : i + 2])
            value = raw[i + 2 : i + 2 + length]
            headers[name] = value.decode("utf-8", "replace") if vtype == 7 else value
            i += 2 + length
        elif vtype in sizes:
            i += sizes[vtype]
        else:
            break
    return headers


def decode_aws_eventstream(data: bytes) -> list[dict]:
    """Messages of an `application/vnd.amazon.eventstream` body.

    Each message is `total_len, headers_len, prelude_crc, headers, payload, crc`. ConverseStream
    events come back as `{<event-type>: payload}` (the shape of the SDK's parsed chunks);
    InvokeModelWithResponseStream `chunk` events carry `{"bytes": base64(vendor JSON)}` and come
    back as that vendor JSON; exceptions as `{"error": {...}}`.
    """
    events: list[dict] = []
    i = 0
    while i + 16 <= len(data):
        total, headers_len = struct.unpack(">II", data[i : i + 8])
        if total < 16 or i + total > len(data):
            break
        headers = _eventstream_headers(data[i + 12 : i + 12 + headers_len])
        payload = data[i + 12 + headers_len : i + total - 4]
        i += total
        try:
            body = orjson.loads(payload) if payload.strip() else {}
        except orjson.JSONDecodeError:
            continue
        if not isinstance(body, dict):
            continue
        body.pop("p", None)  # padding against traffic analysis
        event_type = headers.get(":event-type")
        if headers.get(":message-type") == "exception":
            events.append({"error": {"type": headers.get(":exception-type") or "exception", **body}})
        elif event_type == "chunk" and isinstance(body.get("bytes"), str):
            try:
                raw = base64.b64decode(body["bytes"])
            except (binascii.Error, ValueError):
                continue
            try:
                inner = orjson.loads(raw)
            except orjson.JSONDecodeError:
                # Bedrock Agents' InvokeAgent streams the answer as plain text chunks.
                events.append({"chunk": {"text": raw.decode("utf-8", "replace")}})
                continue
            if isinstance(inner, dict):
                events.append(inner)
        elif event_type:
            events.append({event_type: body})
        else:
            events.append(body)
    return events


def decode_stream_body(body: str | bytes, content_type: str | None) -> list[Any] | None:
    """Events of a streamed HTTP body, or None when it does not look streamed."""
    ct = (content_type or "").lower()
    if isinstance(body, bytes):
        if "eventstream" in ct or (len(body) > 16 and b":event-type" in body[:200]):
            return decode_aws_eventstream(body)
        body = body.decode("utf-8", "replace")
    if "event-stream" in ct or body.lstrip().startswith(("data:", "event:")):
        return decode_sse(body)
    if "stream+json" in ct or "ndjson" in ct or "jsonl" in ct:
        return decode_json_lines(body)
    return None


# --- families and reduction ----------------------------------------------------------------------


def stream_family(event: Any) -> str | None:
    """Which provider's stream an event (one parsed chunk) belongs to."""
    if not isinstance(event, dict):
        return None
    etype = event.get("type")
    if event.get("object") == "chat.completion.chunk":
        return "openai_chat"
    if isinstance(etype, str):
        if etype.startswith("response.") or etype == "error" and "sequence_number" in event:
            return "openai_responses"
        if etype in ANTHROPIC_EVENTS or (etype == "error" and isinstance(event.get("error"), dict)):
            return "anthropic"
        if etype in COHERE_V2_EVENTS:
            return "cohere_v2"
    if event.get("object") in ("text_completion", "completion.chunk") and isinstance(event.get("choices"), list):
        return "openai_completion"
    if len(event) <= 3 and any(k in event for k in CONVERSE_EVENTS) and all(
        k in CONVERSE_EVENTS or k == _METRICS for k in event
    ):
        return "bedrock_converse"
    if "event_type" in event and "is_finished" in event:
        return "cohere_v1"
    if "candidates" in event or ("usageMetadata" in event and "responseId" in event):
        return "gemini"
    if any(k in event for k in ("outputText", "generation", "completion", "outputs", "generations")) and (
        _METRICS in event or "stop_reason" in event or "completionReason" in event or "is_finished" in event
        or "generation_token_count" in event or "outputs" in event
    ):
        return "bedrock_invoke"
    return None


def reduce_events(events: Iterable[Any]) -> tuple[dict | None, Row]:
    """(equivalent non-streamed body, extra row fields such as Bedrock latency) for one stream."""
    evs: list[Mapping[str, Any]] = [e for e in events if isinstance(e, dict)]
    family = next((f for f in (stream_family(e) for e in evs) if f), None)
    reducer = _REDUCERS.get(family or "")
    if reducer is None:
        return None, {}
    extras: Row = {}
    for e in evs:
        if isinstance(e.get(_METRICS), dict):
            extras = invocation_metrics_usage(e[_METRICS])
    return reducer(evs), extras


def _openai_chat(evs: list[Mapping[str, Any]]) -> dict:
    first = next((e for e in evs if e.get("id") or e.get("model")), evs[0])
    choices: dict[int, dict] = {}
    usage: Any = None
    for e in evs:
        u = e.get("usage")
        if not isinstance(u, dict) and isinstance(e.get("x_groq"), dict):
            u = e["x_groq"].get("usage")
        if isinstance(u, dict):
            usage = u
        for c in e.get("choices") or []:
            if not isinstance(c, dict):
                continue
            idx = as_int(c.get("index")) or 0
            ch = choices.setdefault(idx, {"index": idx, "content": [], "reasoning": [], "refusal": [], "tools": {}, "finish": None})
            delta = c.get("delta") if isinstance(c.get("delta"), dict) else {}
            for key, bucket in (("content", "content"), ("reasoning_content", "reasoning"), ("reasoning", "reasoning"), ("refusal", "refusal")):
                if isinstance(delta.get(key), str):
                    ch[bucket].append(delta[key])
            if isinstance(c.get("text"), str) and not isinstance(delta.get("content"), str):
                ch["content"].append(c["text"])  # legacy completions chunks (Together sends both: count once)
            for tc in delta.get("tool_calls") or []:
                if not isinstance(tc, dict):
                    continue
                t = ch["tools"].setdefault(as_int(tc.get("index")) or 0, {"id": None, "type": "function", "name": None, "args": []})
                t["id"] = tc.get("id") or t["id"]
                t["type"] = tc.get("type") or t["type"]
                fn = tc.get("function") if isinstance(tc.get("function"), dict) else {}
                t["name"] = fn.get("name") or t["name"]
                if isinstance(fn.get("arguments"), str):
                    t["args"].append(fn["arguments"])
            if c.get("finish_reason"):
                ch["finish"] = c["finish_reason"]
    legacy = first.get("object") in ("text_completion", "completion.chunk")
    out_choices = []
    for idx in sorted(choices):
        ch = choices[idx]
        text = "".join(ch["content"]) if ch["content"] else None
        if legacy:
            out_choices.append({"index": idx, "text": text or "", "finish_reason": ch["finish"]})
            continue
        msg: dict[str, Any] = {"role": "assistant", "content": text}
        if ch["reasoning"]:
            msg["reasoning_content"] = "".join(ch["reasoning"])
        if ch["refusal"]:
            msg["refusal"] = "".join(ch["refusal"])
        if ch["tools"]:
            msg["tool_calls"] = [
                {"id": t["id"], "type": t["type"], "function": {"name": t["name"], "arguments": "".join(t["args"])}}
                for _, t in sorted(ch["tools"].items())
            ]
        out_choices.append({"index": idx, "message": msg, "finish_reason": ch["finish"]})
    body: dict[str, Any] = {
        "id": first.get("id"),
        "object": "text_completion" if legacy else "chat.completion",
        "created": first.get("created"),
        "model": first.get("model"),
        "choices": out_choices,
    }
    for key in ("service_tier", "system_fingerprint"):
        if first.get(key) is not None:
            body[key] = first[key]
    if usage is not None:
        body["usage"] = usage
    if any(isinstance(e.get("x_groq"), dict) for e in evs):
        body["x_groq"] = next(e["x_groq"] for e in evs if isinstance(e.get("x_groq"), dict))
    return body


def _anthropic(evs: list[Mapping[str, Any]]) -> dict:
    msg: dict[str, Any] = {"type": "message", "role": "assistant", "content": []}
    usage: dict[str, Any] = {}
    final_usage = False
    blocks: dict[int, dict] = {}
    json_parts: dict[int, list[str]] = {}
    for e in evs:
        etype = e.get("type")
        if etype == "message_start" and isinstance(e.get("message"), dict):
            m = e["message"]
            msg.update({k: v for k, v in m.items() if k not in ("content", "usage")})
            if isinstance(m.get("usage"), dict):
                usage.update(m["usage"])
        elif etype == "content_block_start" and isinstance(e.get("content_block"), dict):
            idx = as_int(e.get("index")) or 0
            blocks[idx] = dict(e["content_block"])
        elif etype == "content_block_delta" and isinstance(e.get("delta"), dict):
            idx = as_int(e.get("index")) or 0
            d = e["delta"]
            b = blocks.setdefault(idx, {"type": "text", "text": ""})
            if d.get("type") == "text_delta":
                b["text"] = (b.get("text") or "") + (d.get("text") or "")
            elif d.get("type") == "input_json_delta":
                json_parts.setdefault(idx, []).append(d.get("partial_json") or "")
            elif d.get("type") == "thinking_delta":
                b["thinking"] = (b.get("thinking") or "") + (d.get("thinking") or "")
        elif etype == "message_delta":
            if isinstance(e.get("delta"), dict):
                msg.update({k: v for k, v in e["delta"].items() if k in ("stop_reason", "stop_sequence")})
            if isinstance(e.get("usage"), dict):
                # Cumulative: output_tokens is the final total; restated cache fields are final too.
                usage.update({k: v for k, v in e["usage"].items() if v is not None})
                final_usage = True
        elif etype == "error" and isinstance(e.get("error"), dict):
            return {"type": "error", "error": dict(e["error"])}
    for idx, parts in json_parts.items():
        text = "".join(parts)
        try:
            blocks[idx]["input"] = orjson.loads(text) if text else {}
        except orjson.JSONDecodeError:
            blocks[idx]["input"] = text
    msg["content"] = [blocks[i] for i in sorted(blocks)]
    if usage and not final_usage:
        # `message_start` carries a placeholder output count (usually 1); without a
        # `message_delta` the stream was cut and the real output count is unknown, not 1.
        usage.pop("output_tokens", None)
    if usage:
        msg["usage"] = usage
    return msg


def _responses(evs: list[Mapping[str, Any]]) -> dict:
    snapshot: dict[str, Any] | None = None
    for e in evs:
        if isinstance(e.get("response"), dict):
            snapshot = dict(e["response"])
            if e.get("type") in _RESPONSES_STATUS:
                # The terminal event carries the whole response, usage included.
                snapshot.setdefault("status", _RESPONSES_STATUS[e["type"]])
                snapshot.setdefault("object", "response")
                return snapshot
    # Cut stream: rebuild the output from the finished items, else from the text deltas.
    body = snapshot or {"object": "response", "output": []}
    items = [dict(e["item"]) for e in evs if e.get("type") == "response.output_item.done" and isinstance(e.get("item"), dict)]
    if not items:
        text = "".join(e.get("delta") or "" for e in evs if e.get("type") == "response.output_text.delta")
        if text:
            items = [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]}]
    body["output"] = items
    body.setdefault("object", "response")
    body["status"] = "incomplete" if body.get("status") in (None, "in_progress", "queued") else body["status"]
    if body.get("usage") is None:
        body.pop("usage", None)  # a snapshot's `usage: null` means not yet known, not zero
    return body


def _converse(evs: list[Mapping[str, Any]]) -> dict:
    blocks: dict[int, dict] = {}
    tool_json: dict[int, list[str]] = {}
    body: dict[str, Any] = {"output": {"message": {"role": "assistant", "content": []}}}
    for e in evs:
        if isinstance(e.get("messageStart"), dict):
            body["output"]["message"]["role"] = e["messageStart"].get("role") or "assistant"
        if isinstance(e.get("contentBlockStart"), dict):
            cbs = e["contentBlockStart"]
            start = cbs.get("start") if isinstance(cbs.get("start"), dict) else {}
            if isinstance(start.get("toolUse"), dict):
                blocks[as_int(cbs.get("contentBlockIndex")) or 0] = {"toolUse": {**start["toolUse"], "input": {}}}
        if isinstance(e.get("contentBlockDelta"), dict):
            cbd = e["contentBlockDelta"]
            idx = as_int(cbd.get("contentBlockIndex")) or 0
            d = cbd.get("delta") if isinstance(cbd.get("delta"), dict) else {}
            if isinstance(d.get("text"), str):
                b = blocks.setdefault(idx, {"text": ""})
                b["text"] = (b.get("text") or "") + d["text"]
            elif isinstance(d.get("toolUse"), dict):
                tool_json.setdefault(idx, []).append(d["toolUse"].get("input") or "")
            elif isinstance(d.get("reasoningContent"), dict):
                b = blocks.setdefault(idx, {"reasoningContent": {"reasoningText": {"text": ""}}})
                rt = b.setdefault("reasoningContent", {}).setdefault("reasoningText", {"text": ""})
                rt["text"] = (rt.get("text") or "") + (d["reasoningContent"].get("text") or "")
        if isinstance(e.get("messageStop"), dict):
            body["stopReason"] = e["messageStop"].get("stopReason")
        if isinstance(e.get("metadata"), dict):
            meta = e["metadata"]
            if isinstance(meta.get("usage"), dict):
                body["usage"] = meta["usage"]
            if isinstance(meta.get("metrics"), dict) and meta["metrics"]:
                body["metrics"] = meta["metrics"]
    for idx, parts in tool_json.items():
        text = "".join(parts)
        try:
            blocks.setdefault(idx, {"toolUse": {}})["toolUse"]["input"] = orjson.loads(text) if text else {}
        except orjson.JSONDecodeError:
            blocks[idx]["toolUse"]["input"] = text
    body["output"]["message"]["content"] = [blocks[i] for i in sorted(blocks)]
    return body


def _gemini(evs: list[Mapping[str, Any]]) -> dict:
    body: dict[str, Any] = {}
    cands: dict[int, dict] = {}
    for e in evs:
        for key in ("responseId", "modelVersion", "createTime", "promptFeedback"):
            if e.get(key) is not None:
                body[key] = e[key]
        if isinstance(e.get("usageMetadata"), dict):
            body["usageMetadata"] = e["usageMetadata"]  # cumulative: the last one is the total
        for c in e.get("candidates") or []:
            if not isinstance(c, dict):
                continue
            idx = as_int(c.get("index")) or 0
            cand = cands.setdefault(idx, {"index": idx, "content": {"role": "model", "parts": []}})
            parts = cand["content"]["parts"]
            for p in (c.get("content") or {}).get("parts") or []:
                if not isinstance(p, dict):
                    continue
                if isinstance(p.get("text"), str) and parts and isinstance(parts[-1].get("text"), str) and bool(parts[-1].get("thought")) == bool(p.get("thought")):
                    parts[-1] = {**parts[-1], "text": parts[-1]["text"] + p["text"]}
                else:
                    parts.append(dict(p))
            if c.get("finishReason"):
                cand["finishReason"] = c["finishReason"]
    body["candidates"] = [cands[i] for i in sorted(cands)]
    return body


def _cohere_v1(evs: list[Mapping[str, Any]]) -> dict:
    for e in reversed(evs):
        if isinstance(e.get("response"), dict):
            body = dict(e["response"])
            if e.get("finish_reason") and "finish_reason" not in body:
                body["finish_reason"] = e["finish_reason"]
            return body
    text = "".join(e.get("text") or "" for e in evs if e.get("event_type") in ("text-generation", None))
    start = next((e for e in evs if e.get("event_type") == "stream-start"), {})
    final: Mapping[str, Any] = next((e for e in reversed(evs) if e.get("is_finished")), {})
    return {"text": text, "generation_id": start.get("generation_id"), "finish_reason": final.get("finish_reason")}


def _cohere_v2(evs: list[Mapping[str, Any]]) -> dict:
    msg: dict[str, Any] = {"role": "assistant", "content": []}
    body: dict[str, Any] = {"message": msg}
    texts: list[str] = []
    for e in evs:
        etype = e.get("type")
        delta = e.get("delta") if isinstance(e.get("delta"), dict) else {}
        if etype == "message-start":
            body["id"] = e.get("id")
        elif etype == "content-delta":
            t = ((delta.get("message") or {}).get("content") or {}).get("text")
            if isinstance(t, str):
                texts.append(t)
        elif etype == "message-end":
            body["finish_reason"] = delta.get("finish_reason")
            if isinstance(delta.get("usage"), dict):
                body["usage"] = delta["usage"]
    if texts:
        msg["content"] = [{"type": "text", "text": "".join(texts)}]
    body.setdefault("finish_reason", None)
    return body


def _bedrock_invoke(evs: list[Mapping[str, Any]]) -> dict:
    """Vendor-native InvokeModel chunks: concatenate the vendor's text field, keep the last finish."""
    first = evs[0]
    if any(k in first for k in ("generations",)):  # Cohere Command: one chunk per generation
        return {k: v for k, v in evs[-1].items() if k != _METRICS}
    if "outputs" in first:
        texts = "".join((e.get("outputs") or [{}])[0].get("text") or "" for e in evs if isinstance(e.get("outputs"), list) and e["outputs"])
        last = next((e["outputs"][0].get("stop_reason") for e in reversed(evs) if e.get("outputs") and e["outputs"][0].get("stop_reason")), None)
        return {"outputs": [{"text": texts, "stop_reason": last}]}
    for key in ("outputText", "generation", "completion"):
        if key in first:
            body: dict[str, Any] = {key: "".join(e.get(key) or "" for e in evs)}
            for e in evs:
                for k, v in e.items():
                    if k not in (key, _METRICS) and v is not None:
                        body[k] = v
            if key == "outputText":
                body = {"inputTextTokenCount": body.get("inputTextTokenCount"),
                        "results": [{"outputText": body[key], "completionReason": body.get("completionReason"),
                                     "tokenCount": body.get("totalOutputTextTokenCount")}]}
            return body
    return dict(first)


_REDUCERS = {
    "openai_chat": _openai_chat,
    "openai_completion": _openai_chat,
    "anthropic": _anthropic,
    "openai_responses": _responses,
    "bedrock_converse": _converse,
    "gemini": _gemini,
    "cohere_v1": _cohere_v1,
    "cohere_v2": _cohere_v2,
    "bedrock_invoke": _bedrock_invoke,
}
