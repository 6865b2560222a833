"""The normalized request record: one row per LLM API call, the contract between every stage.

Declared once here; `python -m schemas.logs` regenerates `schemas/requests.md` and
`schemas/requests.schema.json` from it, and tests check that those files are current.

Token usage is normalized into EXCLUSIVE buckets (formats.md §0.2): providers disagree on whether
"input" includes cache reads and writes, so we store

    in_uncached + in_cache_read + in_cache_write_5m + in_cache_write_1h + in_cache_write_unspecified
        = every input token billed, each counted once
    out_total (reasoning included) >= out_reasoning

with nulls where the provider reported nothing, and the provider's own object verbatim in `usage_raw`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

SCHEMA_VERSION = 1

TOOL_CALL = pa.struct(
    [
        pa.field("id", pa.string()),
        pa.field("type", pa.string()),  # function | custom | server tool name
        pa.field("name", pa.string()),
        pa.field("arguments", pa.string()),  # JSON text, as OpenAI sends it
    ]
)

MESSAGE = pa.struct(
    [
        pa.field("role", pa.string()),  # system | developer | user | assistant | tool
        pa.field("content", pa.string()),  # text parts joined with "\n"; null when none
        pa.field("parts_json", pa.string()),  # non-text parts (images, documents, thinking) as JSON
        pa.field("tool_calls", pa.list_(TOOL_CALL)),
        pa.field("tool_call_id", pa.string()),  # on role=tool: the call it answers
        pa.field("name", pa.string()),
    ]
)

CHOICE = pa.struct(
    [
        pa.field("index", pa.int32()),
        pa.field("text", pa.string()),
        pa.field("tool_calls", pa.list_(TOOL_CALL)),
        pa.field("finish_reason", pa.string()),
    ]
)

CACHE_BREAKPOINT = pa.struct(
    [
        pa.field("segment", pa.string()),  # tools | system | messages
        pa.field("index", pa.int32()),  # tool / system block / message index
        pa.field("block", pa.int32()),  # content block within the message (messages only)
        pa.field("ttl", pa.string()),  # 5m | 1h
    ]
)

# (name, type, description). Order is the column order on disk.
_FIELDS: list[tuple[str, pa.DataType, str]] = [
    ("request_id", pa.string(), "Stable id: the source's own id (envelope id, batch custom_id, gateway request id), else the response id, else a content hash."),
    ("ts", pa.timestamp("us", tz="UTC"), "When the call was made (UTC, µs). Null only when the source has no time at all."),
    ("provider", pa.string(), "openai | anthropic | bedrock | google | deepseek | groq | xai | mistral | … (lower case)."),
    ("endpoint", pa.string(), "API surface: chat.completions | messages | responses | converse | generate_content | completions | …"),
    ("model", pa.string(), "Model as requested (falls back to the response's model)."),
    ("model_resolved", pa.string(), "Model snapshot the provider reported in the response."),
    ("user_id", pa.string(), "End user / account id where the format carries one."),
    ("session_id", pa.string(), "Conversation / session / thread id where the format carries one."),
    ("parent_id", pa.string(), "Previous call in a chain (previous_response_id, parentUuid) where known."),
    ("system_text", pa.string(), "System / developer instructions as sent, blocks joined with newlines."),
    ("messages", pa.list_(MESSAGE), "Request messages in order (system/developer messages excluded: see system_text)."),
    ("tools_json", pa.string(), "Tool definitions, normalized to [{name, description, parameters}] JSON; null when none."),
    ("cache_breakpoints", pa.list_(CACHE_BREAKPOINT), "Explicit cache_control / cachePoint markers as logged."),
    ("request_params", pa.string(), "Other request parameters (temperature, max_tokens, n, stream, …) as JSON."),
    ("response_id", pa.string(), "The provider's response id (chatcmpl-…, msg_…, resp_…)."),
    ("response_text", pa.string(), "Assistant text of the first choice; null when the call failed or returned none."),
    ("response_tool_calls", pa.list_(TOOL_CALL), "Tool calls of the first choice."),
    ("response_reasoning", pa.string(), "Reasoning / thinking text or summary when returned."),
    ("n_choices", pa.int32(), "Number of choices returned (n > 1 requests)."),
    ("choices", pa.list_(CHOICE), "All choices when n_choices > 1, else null."),
    ("finish_reason", pa.string(), "Normalized: stop | length | tool_calls | content_filter | refusal | error | pause | other."),
    ("finish_reason_raw", pa.string(), "The provider's own finish/stop reason."),
    ("status_code", pa.int32(), "HTTP status where known (200 for a logged successful body)."),
    ("error_type", pa.string(), "Error type/code for failed calls."),
    ("error_message", pa.string(), "Error message for failed calls (bounded)."),
    ("in_uncached", pa.int64(), "Input tokens billed at the full rate (exclusive bucket)."),
    ("in_cache_read", pa.int64(), "Input tokens read from the prompt cache (exclusive bucket)."),
    ("in_cache_write_5m", pa.int64(), "Input tokens written to a 5-minute cache (exclusive bucket)."),
    ("in_cache_write_1h", pa.int64(), "Input tokens written to a 1-hour cache (exclusive bucket)."),
    ("in_cache_write_unspecified", pa.int64(), "Cache-write tokens whose TTL the source does not say (exclusive bucket)."),
    ("out_total", pa.int64(), "Output tokens, reasoning included."),
    ("out_reasoning", pa.int64(), "Reasoning/thinking tokens (a subset of out_total)."),
    ("usage_raw", pa.string(), "The provider's usage object verbatim (JSON)."),
    ("usage_missing", pa.bool_(), "True when the source reported no usage at all (missing, not zero)."),
    ("cost_reported_usd", pa.float64(), "Cost the source itself reported (gateway spend), if any."),
    ("latency_ms", pa.float64(), "End-to-end latency in ms where present."),
    ("ttft_ms", pa.float64(), "Time to first token in ms where present."),
    ("is_stream", pa.bool_(), "Streamed call."),
    ("is_batch", pa.bool_(), "Submitted through a batch API (async; excluded from latency)."),
    ("service_tier", pa.string(), "Provider service tier where reported."),
    ("feedback_score", pa.float64(), "Explicit feedback normalized to [-1, 1] (thumbs down = -1, up = +1; stars rescaled)."),
    ("feedback_json", pa.string(), "The explicit feedback as logged (JSON)."),
    ("metadata_json", pa.string(), "Free-form metadata/tags as logged (JSON); `partial` notes what a gateway record did not carry or could not be parsed (pipeline/ingest/bodies/partial.py)."),
    ("source_format", pa.string(), "Detected input format (see `logaudit formats`)."),
    ("source_file", pa.string(), "Input file the record came from."),
    ("source_line", pa.int64(), "Line (JSONL/CSV) or record number (JSON arrays) in that file."),
]

REQUEST_SCHEMA = pa.schema([pa.field(n, t) for n, t, _ in _FIELDS])
FIELD_DOCS: dict[str, str] = {n: d for n, _, d in _FIELDS}
REQUEST_COLUMNS: list[str] = [n for n, _, _ in _FIELDS]

# The hive partition column added on write (`requests/date=YYYY-MM-DD/`); "undated" when ts is null.
PARTITION_COLUMN = "date"
UNDATED = "undated"
# Text columns whose values repeat across thousands of requests (a system prompt, the tool schemas):
# readers convert each distinct value once (`pipeline.workdir.store.column_values`).
REPEATED_TEXT_COLUMNS = frozenset({"system_text", "tools_json"})
# The columns the store's one outcome rule reads (request_failed and the other macros of
# pipeline/workdir/sql/request_outcome.sql): a reader that selects columns itself selects these
# for the rule, and never reads them otherwise.
OUTCOME_COLUMNS = ("finish_reason", "error_type", "status_code")

USAGE_INPUT_BUCKETS = (
    "in_uncached",
    "in_cache_read",
    "in_cache_write_5m",
    "in_cache_write_1h",
    "in_cache_write_unspecified",
)

REJECT_FIELDS: list[tuple[str, str]] = [
    ("kind", "rejected (bad input) | skipped (valid, but not an API call, e.g. a Claude Code summary line)"),
    ("source_file", "input file"),
    ("source_line", "line or record number; 0 for a whole-file problem"),
    ("source_format", "detected format, when detection got that far"),
    ("reason", "snake_case reason code"),
    ("detail", "human-readable detail"),
    ("snippet", "the start of the offending record (bounded)"),
]


def _type_name(t: pa.DataType) -> str:
    return str(t).replace("\n", " ")


def _json_schema_type(t: pa.DataType) -> dict:
    if pa.types.is_string(t):
        return {"type": ["string", "null"]}
    if pa.types.is_integer(t):
        return {"type": ["integer", "null"]}
    if pa.types.is_floating(t):
        return {"type": ["number", "null"]}
    if pa.types.is_boolean(t):
        return {"type": ["boolean", "null"]}
    if pa.types.is_timestamp(t):
        return {"type": ["string", "null"], "format": "date-time"}
    if pa.types.is_list(t):
        return {"type": ["array", "null"], "items": _json_schema_type(t.value_type)}
    if pa.types.is_struct(t):
        return {
            "type": "object",
            "properties": {f.name: _json_schema_type(f.type) for f in t},
        }
    raise TypeError(t)


def json_schema() -> dict:
    """The request record as a JSON Schema (what a row looks like when exported to JSON)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "llm-log-audit normalized request record",
        "description": f"schema_version {SCHEMA_VERSION}; one row per LLM API call",
        "type": "object",
        "properties": {
            n: {**_json_schema_type(t), "description": d} for n, t, d in _FIELDS
        },
        "required": ["request_id", "source_format", "source_file", "source_line"],
    }


def markdown_table() -> str:
    lines = [
        f"# Normalized request record (schema_version {SCHEMA_VERSION})",
        "",
        "Generated from `schemas/logs.py` by `python -m schemas.logs`; do not edit by hand.",
        "Stored as hive-partitioned Parquet under `WORKDIR/requests/date=YYYY-MM-DD/` (`date=undated`",
        "for sources without any timestamp). Read it with DuckDB",
        "`read_parquet('WORKDIR/requests/*/*.parquet', hive_partitioning=true)` or polars `scan_parquet`.",
        "",
        "| column | type | meaning |",
        "|---|---|---|",
    ]
    for n, t, d in _FIELDS:
        lines.append(f"| `{n}` | `{_type_name(t)}` | {d} |")
    lines += ["", "## Rejects (`WORKDIR/rejects/*.jsonl`)", "", "| field | meaning |", "|---|---|"]
    lines += [f"| `{n}` | {d} |" for n, d in REJECT_FIELDS]
    return "\n".join(lines) + "\n"


def write_docs(folder: Path | None = None) -> None:
    folder = folder or Path(__file__).parent
    (folder / "requests.md").write_text(markdown_table(), encoding="utf-8")
    (folder / "requests.schema.json").write_text(json.dumps(json_schema(), indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write_docs()
