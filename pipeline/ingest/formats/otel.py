"""OpenTelemetry GenAI spans (formats.md §i): OTLP/JSON exports (`resourceSpans`) and Jaeger
JSON exports (`data[].spans[]`, or one trace object per line).

An export is one record holding many spans. LLM call spans become rows; every other span (agent,
chain, tool, retrieval, embedding, HTTP, queue spans) is listed as a skipped item. Agent and
workflow spans often repeat their children's token totals, so only call spans are counted.

Attribute names differ by generation, all read here:
* current GenAI semconv: `gen_ai.operation.name`, `gen_ai.provider.name`, `gen_ai.request.model`,
  `gen_ai.input.messages` / `gen_ai.output.messages` / `gen_ai.system_instructions` (JSON),
  `gen_ai.usage.input_tokens` (SHOULD include cached), `gen_ai.usage.cache_read.input_tokens`, …
* older: `gen_ai.system`, `gen_ai.usage.prompt_tokens` / `completion_tokens`, underscore cache
  names, OpenLLMetry `gen_ai.prompt.N.*` / `gen_ai.completion.N.*`, `llm.request.type`;
* OpenInference: `openinference.span.kind = LLM`, `llm.model_name`, `llm.token_count.*`,
  `llm.input_messages.N.message.*`, `llm.output_messages.N.message.*`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from pipeline.ingest.bodies import finish, message, provider_from_model, tool_call, tools_json
from pipeline.ingest.bodies.partial import missing_parts, with_partial
from pipeline.ingest.formats import Context, record_format
from pipeline.ingest.rows import Row, Skip, as_float, as_int, as_str, bounded, dumps, make_row, usage_buckets

CALL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "completion", "responses", "messages"})
_FRAMEWORKS = frozenset({"langchain", "langgraph", "litellm", "llama_index", "llamaindex", "crewai", "openllmetry",
                         "traceloop", "haystack", "autogen", "semantic_kernel", "dspy", "pydantic_ai", "unknown"})
_PROVIDER_NAMES = {
    "aws.bedrock": "bedrock", "gcp.gemini": "google", "gcp.vertex_ai": "google", "gcp.gen_ai": "google",
    "vertexai": "google", "vertex_ai": "google", "google": "google", "gemini": "google",
    "azure.ai.openai": "azure", "azure.ai.inference": "azure", "az.ai.openai": "azure", "az.ai.inference": "azure",
    "mistral_ai": "mistral", "mistralai": "mistral", "x_ai": "xai", "ibm.watsonx.ai": "ibm", "watsonx": "ibm",
}
_PARAMS = ("temperature", "max_tokens", "top_p", "top_k", "seed", "stop_sequences", "frequency_penalty",
           "presence_penalty", "choice.count", "encoding_formats")


def _first(attrs: Mapping[str, Any], *keys: str) -> Any:
    for k in keys:
        v = attrs.get(k)
        if v not in (None, ""):
            return v
    return None


def _json_value(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def _indexed(attrs: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """`prefix.N.rest = v` attributes -> [{rest: v}, …] ordered by N."""
    pat = re.compile(re.escape(prefix) + r"\.(\d+)\.(.+)$")
    found: dict[int, dict[str, Any]] = {}
    for k, v in attrs.items():
        m = pat.match(k)
        if m:
            found.setdefault(int(m.group(1)), {})[m.group(2)] = v
    return [found[i] for i in sorted(found)]


def _parts_message(m: Mapping[str, Any]) -> list[dict]:
    """A semconv message `{role, parts:[…]}` -> normalized messages (tool responses become role=tool)."""
    role = as_str(m.get("role")) or "user"
    texts, calls, results, rest = [], [], [], []
    parts = m.get("parts")
    if parts is None and "content" in m:  # some emitters use a plain `content`
        parts = [{"type": "text", "content": m.get("content")}]
    for p in parts or []:
        if not isinstance(p, dict):
            continue
        ptype = p.get("type")
        if ptype == "text" or (ptype is None and "content" in p):
            texts.append(as_str(p.get("content")) or "")
        elif ptype in ("tool_call", "server_tool_call"):
            calls.append(tool_call(p.get("id"), p.get("name"), p.get("arguments"), "function" if ptype == "tool_call" else "server_tool"))
        elif ptype in ("tool_call_response", "server_tool_call_response"):
            resp = p.get("response", p.get("result"))
            results.append(message("tool", resp if isinstance(resp, str) else dumps(resp), tool_call_id=as_str(p.get("id"))))
        elif ptype != "reasoning":
            rest.append(dict(p))
    out = []
    if texts or calls or rest or not results:
        out.append(message("tool" if role == "tool" and not results else role, "\n".join(texts) if texts else None,
                           parts_json=dumps(rest), tool_calls=calls, name=as_str(m.get("name"))))
    return results + out if role != "assistant" else out + results


def _messages_from(value: Any) -> list[dict]:
    value = _json_value(value)
    if isinstance(value, dict):
        value = value.get("messages") or [value]
    out: list[dict] = []
    for m in value if isinstance(value, list) else []:
        if isinstance(m, dict):
            out += _parts_message(m)
    return out


def _legacy_messages(attrs: Mapping[str, Any], prefix: str, oi: bool = False) -> list[dict]:
    out = []
    for item in _indexed(attrs, prefix):
        if oi:  # OpenInference nests under `message.`
            item = {k.removeprefix("message."): v for k, v in item.items()}
        calls = []
        for tc in _indexed({f"t.{k}": v for k, v in item.items()}, "t.tool_calls"):
            tc = {k.removeprefix("tool_call."): v for k, v in tc.items()}
            calls.append(tool_call(tc.get("id"), tc.get("function.name") or tc.get("name"), tc.get("function.arguments") or tc.get("arguments")))
        content = item.get("content")
        out.append(message(as_str(item.get("role")) or "user", as_str(content) if content is not None else None,
                           tool_calls=calls, tool_call_id=as_str(item.get("tool_call_id"))))
    return out


def _tools(value: Any) -> str | None:
    value = _json_value(value)
    out = []
    for t in value if isinstance(value, list) else []:
        if isinstance(t, dict):
            fn = t.get("function") if isinstance(t.get("function"), dict) else t
            out.append({"name": fn.get("name"), "description": fn.get("description"),
                        "parameters": fn.get("parameters") or fn.get("input_schema")})
    return tools_json(out)


def _provider(attrs: Mapping[str, Any], model: str | None) -> str | None:
    raw = as_str(_first(attrs, "gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system"))
    name = (raw or "").lower()
    if name and name not in _FRAMEWORKS:
        return _PROVIDER_NAMES.get(name, name)
    return provider_from_model(model)


def _is_llm_span(name: str, attrs: Mapping[str, Any]) -> bool:
    op = as_str(attrs.get("gen_ai.operation.name"))
    if op:
        return op in CALL_OPERATIONS
    kind = as_str(attrs.get("openinference.span.kind"))
    if kind:
        return kind.upper() == "LLM"
    if as_str(attrs.get("llm.request.type")) in ("chat", "completion"):
        return True
    has_model = _first(attrs, "gen_ai.request.model", "gen_ai.response.model", "llm.model_name") is not None
    has_usage = _first(attrs, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt") is not None
    return has_model and has_usage


def _usage(attrs: Mapping[str, Any]) -> Row:
    total_in = as_int(_first(attrs, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt", "llm.usage.prompt_tokens"))
    output = as_int(_first(attrs, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion", "llm.usage.completion_tokens"))
    read = as_int(_first(attrs, "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens", "llm.token_count.prompt_details.cache_read"))
    write = as_int(_first(attrs, "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_creation_input_tokens", "llm.token_count.prompt_details.cache_write"))
    reasoning = as_int(_first(attrs, "gen_ai.usage.reasoning.output_tokens", "llm.token_count.completion_details.reasoning"))
    raw = {k: v for k, v in attrs.items() if k.startswith(("gen_ai.usage.", "llm.token_count.", "llm.usage."))}
    uncached = total_in
    cached = (read or 0) + (write or 0)
    # Input SHOULD include cache reads/writes; an emitter that reports more cached tokens than
    # input clearly counted them apart (Anthropic-style), so then nothing is subtracted.
    if total_in is not None and 0 < cached <= total_in:
        uncached = total_in - cached
    return usage_buckets(uncached=uncached, cache_read=read, write_unspecified=write, output=output, reasoning=reasoning, raw=raw or None)


def span_row(ctx: Context, span: Mapping[str, Any]) -> Row:
    """A normalized span (`name`, `attrs`, `start`, `end` datetimes, `status_error`, ids, `resource`) -> a row."""
    attrs = span["attrs"]
    model = as_str(_first(attrs, "gen_ai.request.model", "llm.model_name", "llm.request.model"))
    resolved = as_str(_first(attrs, "gen_ai.response.model"))
    if model in (None, "unknown"):
        # Some instrumentations leave the semconv model unset ("unknown") and name it elsewhere.
        model = (resolved if resolved not in (None, "unknown") else None) or as_str(next(
            (v for k, v in attrs.items() if k.endswith("association.properties.ls_model_name") and v), None))
    if resolved == "unknown":
        resolved = None
    system = _messages_from(attrs.get("gen_ai.system_instructions"))
    messages = _messages_from(attrs.get("gen_ai.input.messages")) or _legacy_messages(attrs, "gen_ai.prompt") or _legacy_messages(attrs, "llm.input_messages", oi=True)
    outputs = _messages_from(attrs.get("gen_ai.output.messages")) or _legacy_messages(attrs, "gen_ai.completion") or _legacy_messages(attrs, "llm.output_messages", oi=True)
    for ev in span.get("events") or []:  # deprecated per-message events
        if ev["name"] in ("gen_ai.content.prompt",) and not messages:
            messages = _messages_from(ev["attrs"].get("gen_ai.prompt"))
        elif ev["name"] in ("gen_ai.content.completion",) and not outputs:
            outputs = _messages_from(ev["attrs"].get("gen_ai.completion"))
    system_texts = [m["content"] for m in system if m["content"]]
    while messages and messages[0]["role"] in ("system", "developer"):
        system_texts.append(messages.pop(0)["content"] or "")
    reply = next((m for m in outputs if m["role"] == "assistant"), outputs[0] if outputs else None)
    reasons = _json_value(attrs.get("gen_ai.response.finish_reasons"))
    raw_finish = reasons[0] if isinstance(reasons, list) and reasons else reasons if isinstance(reasons, str) else None
    norm = finish(raw_finish)
    if span["status_error"]:
        norm = "error"
    params = {p: attrs[f"gen_ai.request.{p}"] for p in _PARAMS if f"gen_ai.request.{p}" in attrs}
    if isinstance(_json_value(attrs.get("llm.invocation_parameters")), dict):
        params.update(_json_value(attrs["llm.invocation_parameters"]))
    start, end = span["start"], span["end"]
    ttft = as_float(attrs.get("gen_ai.response.time_to_first_chunk"))
    meta = {
        "trace_id": span["trace_id"], "span_id": span["span_id"], "parent_span_id": span.get("parent_span_id"),
        "span_name": span["name"], "service_name": span.get("service"),
        "operation": attrs.get("gen_ai.operation.name"), "agent_name": attrs.get("gen_ai.agent.name"),
    }
    return make_row(
        {
            "messages": messages,
            "system_text": "\n".join(system_texts) or None,
            "tools_json": _tools(_first(attrs, "gen_ai.tool.definitions", "llm.tools")),
            "request_params": dumps(params),
            "response_text": reply["content"] if reply else None,
            "response_tool_calls": reply["tool_calls"] if reply else None,
            "n_choices": len([m for m in outputs if m["role"] == "assistant"]) or (1 if reply else None),
            **_usage(attrs),
        },
        record=[span["trace_id"], span["span_id"]],
        request_id=f"{span['trace_id']}:{span['span_id']}",
        ts=start,
        provider=_provider(attrs, model),
        endpoint=as_str(attrs.get("gen_ai.operation.name")) or as_str(attrs.get("llm.request.type")) or "chat",
        model=model,
        model_resolved=resolved,
        response_id=as_str(attrs.get("gen_ai.response.id")),
        user_id=as_str(_first(attrs, "user.id", "enduser.id", "langfuse.user.id")),
        session_id=as_str(_first(attrs, "gen_ai.conversation.id", "session.id", "langfuse.session.id")),
        finish_reason=norm,
        finish_reason_raw=as_str(raw_finish),
        error_type=as_str(attrs.get("error.type")) or ("error" if span["status_error"] else None),
        error_message=bounded(span.get("status_message")) if span["status_error"] else None,
        latency_ms=(end - start).total_seconds() * 1000 if start and end else None,
        ttft_ms=ttft * 1000 if ttft is not None else None,
        is_stream=bool(_first(attrs, "gen_ai.request.stream", "llm.is_streaming")) or None,
        service_tier=as_str(_first(attrs, "gen_ai.openai.response.service_tier", "openai.response.service_tier")),
        # Content capture is opt-in in OTel GenAI: say when the span carried no conversation or reply.
        metadata_json=dumps(with_partial({k: v for k, v in meta.items() if v}, missing_parts(
            {"messages": messages, "system_text": "\n".join(system_texts) or None,
             "response_text": reply["content"] if reply else None,
             "response_tool_calls": reply["tool_calls"] if reply else None, "finish_reason": norm}))),
    )


def _rows(ctx: Context, spans: Iterator[dict], what: str) -> list[Row]:
    rows, skipped = [], []
    for span in spans:
        if _is_llm_span(span["name"], span["attrs"]):
            try:
                rows.append(span_row(ctx, span))
            except (TypeError, ValueError, KeyError, AttributeError) as e:
                skipped.append(("malformed_record", f"span {span['span_id']} ({span['name']}): {type(e).__name__}: {e}"))
        else:
            op = span["attrs"].get("gen_ai.operation.name") or span["attrs"].get("openinference.span.kind")
            skipped.append(("not_an_llm_call_span", f"span {span['span_id']} `{span['name']}`" + (f" (operation {op})" if op else "")))
    if not rows:
        raise Skip("no_llm_spans", f"{what} with {len(skipped)} span(s), none an LLM call")
    for reason, detail in skipped:
        ctx.skip_item(reason, detail)
    return rows


# --- OTLP/JSON ------------------------------------------------------------------------------------


def _otlp_value(v: Any) -> Any:
    if not isinstance(v, dict):
        return v
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in v:
            return v[key]
    if "intValue" in v:
        return as_int(v["intValue"])  # int64 is a string in OTLP/JSON
    if "arrayValue" in v:
        return [_otlp_value(x) for x in (v["arrayValue"] or {}).get("values") or []]
    if "kvlistValue" in v:
        return {kv.get("key"): _otlp_value(kv.get("value")) for kv in (v["kvlistValue"] or {}).get("values") or []}
    if "bytesValue" in v:
        return v["bytesValue"]
    return None


def _otlp_attrs(items: Any) -> dict[str, Any]:
    return {kv["key"]: _otlp_value(kv.get("value")) for kv in items or [] if isinstance(kv, dict) and "key" in kv}


def _nanos(value: Any) -> datetime | None:
    n = as_int(value)
    return datetime.fromtimestamp(n / 1e9, tz=UTC) if n else None


def _otlp_spans(rec: Mapping[str, Any]) -> Iterator[dict]:
    for rs in rec.get("resourceSpans") or []:
        resource = _otlp_attrs((rs.get("resource") or {}).get("attributes"))
        for ss in rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or []:
            for sp in ss.get("spans") or []:
                if not isinstance(sp, dict):
                    continue
                status = sp.get("status") or {}
                code = status.get("code")
                yield {
                    "name": as_str(sp.get("name")) or "",
                    "attrs": _otlp_attrs(sp.get("attributes")),
                    "start": _nanos(sp.get("startTimeUnixNano")),
                    "end": _nanos(sp.get("endTimeUnixNano")),
                    "status_error": code in (2, "STATUS_CODE_ERROR", "2"),
                    "status_message": as_str(status.get("message")),
                    "trace_id": as_str(sp.get("traceId")),
                    "span_id": as_str(sp.get("spanId")),
                    "parent_span_id": as_str(sp.get("parentSpanId")) or None,
                    "service": resource.get("service.name"),
                    "events": [{"name": e.get("name"), "attrs": _otlp_attrs(e.get("attributes"))} for e in sp.get("events") or [] if isinstance(e, dict)],
                }


@record_format(
    "otlp_traces",
    "OTLP/JSON trace export (`resourceSpans[].scopeSpans[].spans[]`): one row per GenAI/OpenInference LLM call span; other spans skipped",
    lambda rec: isinstance(rec.get("resourceSpans"), list),
    order=10,
)
def parse_otlp(rec: Mapping[str, Any], ctx: Context) -> list[Row]:
    return _rows(ctx, _otlp_spans(rec), "OTLP export")


# --- Jaeger JSON ----------------------------------------------------------------------------------


def _jaeger_attrs(tags: Any) -> dict[str, Any]:
    return {t["key"]: t.get("value") for t in tags or [] if isinstance(t, dict) and "key" in t}


def _micros(value: Any) -> datetime | None:
    n = as_int(value)
    return datetime.fromtimestamp(n / 1e6, tz=UTC) if n else None


def _jaeger_spans(traces: list) -> Iterator[dict]:
    for trace in traces:
        if not isinstance(trace, dict):
            continue
        processes = trace.get("processes") if isinstance(trace.get("processes"), dict) else {}
        for sp in trace.get("spans") or []:
            if not isinstance(sp, dict):
                continue
            attrs = _jaeger_attrs(sp.get("tags"))
            start = _micros(sp.get("startTime"))
            duration = as_int(sp.get("duration"))
            parent = next((r.get("spanID") for r in sp.get("references") or [] if isinstance(r, dict) and r.get("refType") == "CHILD_OF"), None)
            events = []
            for log in sp.get("logs") or []:
                fields = _jaeger_attrs(log.get("fields")) if isinstance(log, dict) else {}
                events.append({"name": fields.get("event"), "attrs": fields})
            yield {
                "name": as_str(sp.get("operationName")) or "",
                "attrs": attrs,
                "start": start,
                "end": datetime.fromtimestamp(start.timestamp() + duration / 1e6, tz=UTC) if start and duration is not None else None,
                "status_error": attrs.get("otel.status_code") == "ERROR" or attrs.get("error") in (True, "true"),
                "status_message": as_str(attrs.get("otel.status_description")),
                "trace_id": as_str(sp.get("traceID") or trace.get("traceID")),
                "span_id": as_str(sp.get("spanID")),
                "parent_span_id": as_str(parent),
                "service": (processes.get(sp.get("processID")) or {}).get("serviceName"),
                "events": events,
            }


def _is_jaeger(rec: Mapping[str, Any]) -> bool:
    data = rec.get("data")
    if isinstance(data, list):
        return bool(data) and all(isinstance(t, dict) and "spans" in t and "traceID" in t for t in data)
    return "traceID" in rec and isinstance(rec.get("spans"), list)


@record_format(
    "jaeger_traces",
    "Jaeger JSON trace export (`data[].spans[]` with typed `tags`, or one trace per line): one row per LLM call span; other spans skipped",
    _is_jaeger,
    order=10,
)
def parse_jaeger(rec: Mapping[str, Any], ctx: Context) -> list[Row]:
    traces = rec["data"] if isinstance(rec.get("data"), list) else [rec]
    return _rows(ctx, _jaeger_spans(traces), "Jaeger export")
