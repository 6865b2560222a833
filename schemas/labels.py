"""Tables written by the task-type and signal audit (`audit/tasks.py`) under `WORKDIR/audit/`.

Declared once here; `python -m schemas.labels` regenerates `schemas/labels.md`, and a test checks
that it is current. `request_labels.parquet` is the per-request contract later stages join on
`request_id` (the cache audit for per-task breakdowns, the dataset builder for `clean_example`).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

LABELS_VERSION = 1

# The "clean" predicate, stated once: the dataset builder applies the same definition.
CLEAN_EXAMPLE_RULE = (
    "the call succeeded (no error, status < 400) with finish_reason `stop` or `tool_calls` and a non-empty "
    "answer (text or tool calls), and its response was not regenerated, not edited and not rated negatively"
)

_REQUEST_LABELS: list[tuple[str, pa.DataType, str]] = [
    ("request_id", pa.string(), "The request (joins `requests.request_id`)."),
    ("ts", pa.timestamp("us", tz="UTC"), "When the call was made (copied for convenience)."),
    ("week", pa.date32(), "Monday of the ISO week of `ts` (null when undated)."),
    ("model", pa.string(), "Model as requested."),
    ("task_type", pa.string(), "Task type id (`task_01` = the largest; `other` = no recurring template). See task_types."),
    ("task_label", pa.string(), "Human-readable label of the task type."),
    ("system_fp", pa.string(), "Fingerprint of the system prompt with dynamic spans masked (one value per prompt version); null without a system prompt."),
    ("tools_fp", pa.string(), "Fingerprint of the sorted tool names; null without tools."),
    ("user_skeleton_fp", pa.string(), "Fingerprint of the recurring (template) lines of the first user message; null when it has none."),
    ("regenerated", pa.bool_(), "The user asked again: the same conversation state (identity, parent, masked system prompt, tools, messages) was resent within the window after this call succeeded (any returned answer, even empty or truncated), and answered again."),
    ("regeneration_of", pa.string(), "On the later request: the succeeded request it regenerated."),
    ("is_retry", pa.bool_(), "This request resends the state of a FAILED call (error, 429, 5xx) within the window: a retry, not a rejection of an answer."),
    ("retry_of", pa.string(), "The failed request this one retried."),
    ("multi_choice", pa.bool_(), "An n > 1 request: its choices come from one call, so it is never itself counted as a regeneration (a later resend can still regenerate it)."),
    ("edited", pa.bool_(), "The user's next turn pasted a modified copy of this response (or an explicit edit/correction field says so)."),
    ("edit_similarity", pa.float64(), "Word-level similarity (difflib ratio, 0-1) of the response and the user's edited copy; null when not edited."),
    ("edit_source", pa.string(), "pasted_in_user_turn | edited_in_history | explicit_field; null when not edited."),
    ("feedback_rating", pa.float64(), "Explicit feedback normalized to [-1, 1] (the store's `feedback_score`)."),
    ("negative_feedback", pa.bool_(), "feedback_rating < 0."),
    ("failed", pa.bool_(), "The call failed (error, status >= 400, finish_reason `error`)."),
    ("clean_example", pa.bool_(), "Passes the dataset filters: " + CLEAN_EXAMPLE_RULE + "."),
]

_TASK_TYPES: list[tuple[str, pa.DataType, str]] = [
    ("task_type", pa.string(), "Task type id, ordered by requests (`task_01` largest); `other` collects requests without a recurring template."),
    ("label", pa.string(), "Human-readable label: the prompt's first distinctive instruction line."),
    ("basis", pa.string(), "What grouped it: system_prompt (near-identical masked system prompts), system_prompt+user_template, either with +tool_set when split by tool set (agents sharing a base prompt), content (MinHash LSH over recurring prompt text), other."),
    ("requests", pa.int64(), "Requests of this type."),
    ("share_requests", pa.float64(), "Share of all requests."),
    ("cumulative_share_requests", pa.float64(), "Share of requests covered by this type and every larger one (top-k coverage)."),
    ("input_tokens", pa.int64(), "Input tokens (all exclusive buckets)."),
    ("output_tokens", pa.int64(), "Output tokens."),
    ("share_tokens", pa.float64(), "Share of all (input + output) tokens."),
    ("spend_usd", pa.float64(), "Spend from `request_costs.parquet` (audit.cost); null when no costs were computed."),
    ("share_spend", pa.float64(), "Share of all spend; null when no costs were computed."),
    ("models", pa.list_(pa.string()), "Models used, most requests first."),
    ("system_versions", pa.int32(), "System-prompt versions (masked variants with enough requests) merged into this type; see task_type_versions."),
    ("tool_sets", pa.int32(), "Distinct tool sets offered."),
    ("input_tokens_p50", pa.float64(), "Median input tokens per request."),
    ("input_tokens_p90", pa.float64(), "90th percentile of input tokens."),
    ("output_tokens_p50", pa.float64(), "Median output tokens."),
    ("output_tokens_p90", pa.float64(), "90th percentile of output tokens."),
    ("output_tokens_mean", pa.float64(), "Mean output tokens."),
    ("json_output_rate", pa.float64(), "Share of text answers that parse as a JSON object or array (code fences stripped)."),
    ("json_keyset_stability", pa.float64(), "Among JSON-object answers, the share with the most common top-level key set; null without JSON answers."),
    ("tool_call_rate", pa.float64(), "Share of answers that are tool calls."),
    ("output_length_cv", pa.float64(), "Coefficient of variation of output tokens (stddev / mean): low means a consistent output size."),
    ("repetitiveness", pa.float64(), "0-1: mean of input-template share (share of prompt text in the recurring template) and output-format consistency."),
    ("regeneration_rate", pa.float64(), "Share of successful responses that were regenerated."),
    ("retry_rate", pa.float64(), "Share of requests that retried a failed call."),
    ("edit_rate", pa.float64(), "Share of successful responses the user edited."),
    ("feedback_count", pa.int64(), "Requests with explicit feedback."),
    ("negative_feedback_rate", pa.float64(), "Share of requests with feedback that were rated negatively (null without feedback)."),
    ("failed_rate", pa.float64(), "Share of requests that failed."),
    ("clean_examples", pa.int64(), "Requests passing the dataset filters (`clean_example`)."),
    ("first_seen", pa.timestamp("us", tz="UTC"), "First request."),
    ("last_seen", pa.timestamp("us", tz="UTC"), "Last request."),
]

_TASK_TYPE_VERSIONS: list[tuple[str, pa.DataType, str]] = [
    ("task_type", pa.string(), "Task type id."),
    ("version", pa.int32(), "1, 2, … by first appearance."),
    ("system_fp", pa.string(), "Fingerprint of the masked system prompt."),
    ("requests", pa.int64(), "Requests sent with this version."),
    ("first_seen", pa.timestamp("us", tz="UTC"), "First request with this version."),
    ("last_seen", pa.timestamp("us", tz="UTC"), "Last request with this version."),
    ("similarity_to_previous", pa.float64(), "Word 3-shingle Jaccard to the previous version (null for version 1)."),
    ("added_text", pa.string(), "Sentences this version adds to the previous one (masked, bounded)."),
    ("removed_text", pa.string(), "Sentences of the previous version this one drops (masked, bounded)."),
]

_SIGNAL_RATES: list[tuple[str, pa.DataType, str]] = [
    ("dimension", pa.string(), "task_type | model | week | all."),
    ("key", pa.string(), "The task type id, model name or week (YYYY-MM-DD, Monday); `all` for the total."),
    ("requests", pa.int64(), "Requests."),
    ("answered", pa.int64(), "Successful requests (the denominator of regeneration and edit rates)."),
    ("regenerated", pa.int64(), "Responses regenerated."),
    ("regeneration_rate", pa.float64(), "regenerated / answered."),
    ("retries", pa.int64(), "Requests retrying a failed call."),
    ("retry_rate", pa.float64(), "retries / requests."),
    ("edited", pa.int64(), "Responses edited."),
    ("edit_rate", pa.float64(), "edited / answered."),
    ("feedback_count", pa.int64(), "Requests with explicit feedback."),
    ("negative_feedback", pa.int64(), "Requests rated negatively."),
    ("negative_feedback_rate", pa.float64(), "negative_feedback / feedback_count (null without feedback)."),
    ("clean_examples", pa.int64(), "Requests passing the dataset filters."),
    ("clean_rate", pa.float64(), "clean_examples / requests."),
]


def _schema(fields: list[tuple[str, pa.DataType, str]]) -> pa.Schema:
    return pa.schema([pa.field(n, t) for n, t, _ in fields])


REQUEST_LABELS_SCHEMA = _schema(_REQUEST_LABELS)
TASK_TYPES_SCHEMA = _schema(_TASK_TYPES)
TASK_TYPE_VERSIONS_SCHEMA = _schema(_TASK_TYPE_VERSIONS)
SIGNAL_RATES_SCHEMA = _schema(_SIGNAL_RATES)

TABLES: dict[str, tuple[list[tuple[str, pa.DataType, str]], str]] = {
    "request_labels": (_REQUEST_LABELS, "One row per request: its task type and user signals."),
    "task_types": (_TASK_TYPES, "One row per task type, largest first."),
    "task_type_versions": (_TASK_TYPE_VERSIONS, "System-prompt versions merged into each task type."),
    "signal_rates": (_SIGNAL_RATES, "Signal rates per task type, model and week (and overall)."),
}


def markdown() -> str:
    lines = [
        f"# Task types and user signals (labels_version {LABELS_VERSION})",
        "",
        "Generated from `schemas/labels.py` by `python -m schemas.labels`; do not edit by hand.",
        "Written by `audit/tasks.py` to `WORKDIR/audit/<table>.parquet`.",
        "",
        f"**Clean example** (`clean_example`, shared with the dataset builder): {CLEAN_EXAMPLE_RULE}.",
    ]
    for name, (fields, what) in TABLES.items():
        lines += ["", f"## `{name}.parquet`", "", what, "", "| column | type | meaning |", "|---|---|---|"]
        lines += [f"| `{n}` | `{str(t)}` | {d} |" for n, t, d in fields]
    return "\n".join(lines) + "\n"


def write_docs(folder: Path | None = None) -> None:
    folder = folder or Path(__file__).parent
    (folder / "labels.md").write_text(markdown(), encoding="utf-8")


if __name__ == "__main__":
    write_docs()
