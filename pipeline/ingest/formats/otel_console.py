"""OpenTelemetry SDK console / file span dumps (Python `ConsoleSpanExporter`, also written to files
with `out=`): `ReadableSpan.to_json()` objects, pretty-printed one after another or one per line.

A span is `{name, context: {trace_id: "0x…", span_id: "0x…"}, kind: "SpanKind.CLIENT",
parent_id, start_time, end_time (ISO), status: {status_code, description}, attributes: {…},
events: [{name, timestamp, attributes}], resource: {attributes: {…}}}`. Each span is one record:
GenAI / OpenInference / OpenLLMetry call spans become rows through the same span reader as OTLP
and Jaeger exports; every other span (HTTP, agent, tool, chain) is skipped as not a model call.
Metric and log records the console exporters print into the same stream are skipped too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.ingest.formats import Context, record_format, skip_format
from pipeline.ingest.formats.otel import _is_llm_span, span_row
from pipeline.ingest.rows import Row, Skip, as_str, parse_ts

NAME = "otel_console_span"


def _is_console_span(rec: Mapping[str, Any]) -> bool:
    context = rec.get("context")
    return (isinstance(context, dict) and "span_id" in context and "trace_id" in context
            and isinstance(rec.get("attributes"), dict | None) and "start_time" in rec)


def _hex(value: Any) -> str | None:
    s = as_str(value)
    return s[2:] if s and s.startswith("0x") else s


@record_format(
    NAME,
    "OpenTelemetry console/file span dump (`ConsoleSpanExporter`: `context.trace_id/span_id` + `kind` + `attributes`, "
    "pretty-printed objects one after another): one row per LLM call span, other spans skipped",
    _is_console_span,
    order=10,
)
def parse_console_span(rec: Mapping[str, Any], ctx: Context) -> list[Row]:
    attrs = dict(rec.get("attributes") or {})
    name = as_str(rec.get("name")) or ""
    span_id = _hex(rec["context"].get("span_id"))
    if not _is_llm_span(name, attrs):
        op = attrs.get("gen_ai.operation.name") or attrs.get("openinference.span.kind")
        raise Skip("not_an_llm_call_span", f"span {span_id} `{name}`" + (f" (operation {op})" if op else ""))
    status = rec.get("status") if isinstance(rec.get("status"), dict) else {}
    resource = rec.get("resource") if isinstance(rec.get("resource"), dict) else {}
    resource_attrs = resource.get("attributes") if isinstance(resource.get("attributes"), dict) else resource
    span = {
        "name": name,
        "attrs": attrs,
        "start": parse_ts(rec.get("start_time")),
        "end": parse_ts(rec.get("end_time")),
        "status_error": str(status.get("status_code", "")).upper().endswith("ERROR"),
        "status_message": as_str(status.get("description")),
        "trace_id": _hex(rec["context"].get("trace_id")),
        "span_id": span_id,
        "parent_span_id": _hex(rec.get("parent_id")),
        "service": (resource_attrs or {}).get("service.name"),
        "events": [{"name": e.get("name"), "attrs": e.get("attributes") or {}}
                   for e in rec.get("events") or [] if isinstance(e, dict)],
    }
    row = span_row(ctx, span)
    row["source_format"] = NAME
    return [row]


def _is_other_console_record(rec: Mapping[str, Any]) -> bool:
    metrics = isinstance(rec.get("resource_metrics"), list)
    log = "severity_text" in rec and "body" in rec and "trace_id" in rec
    return metrics or log


parse_console_other = skip_format(
    "otel_console_other",
    "OpenTelemetry console metric or log record (`resource_metrics`, or `body` + `severity_text`): valid, not a model call (skipped)",
    _is_other_console_record,
    lambda rec: f"OpenTelemetry console {'metrics' if 'resource_metrics' in rec else 'log record'}",
    order=10,
)
