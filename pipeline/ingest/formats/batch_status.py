"""Batch job status objects saved next to batch files: Anthropic `message_batch` objects
(`GET /v1/messages/batches/{id}`: `type: "message_batch"`, `processing_status`, `request_counts`)
and OpenAI `batch` objects (`GET /v1/batches/{id}`: `object: "batch"`, `status`, `request_counts`),
alone or as a list page. They describe a job, not a model call: valid records, skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.ingest.formats import skip_format
from pipeline.ingest.rows import as_str


def _is_status(rec: Mapping[str, Any]) -> bool:
    if rec.get("type") == "message_batch" and ("processing_status" in rec or "request_counts" in rec):
        return True
    if rec.get("object") == "batch" and "status" in rec and ("request_counts" in rec or "input_file_id" in rec):
        return True
    data = rec.get("data")
    return (rec.get("object") == "list" or "has_more" in rec) and isinstance(data, list) and bool(data) and all(
        isinstance(d, dict) and _is_status(d) for d in data
    )


def _status_ids(rec: Mapping[str, Any]) -> str:
    items = rec["data"] if isinstance(rec.get("data"), list) else [rec]
    ids = ", ".join(as_str(i.get("id")) or "?" for i in items[:5])
    return f"batch status object(s) {ids}: job metadata, the calls are in the batch's result file"


parse_status = skip_format(
    "batch_status",
    "batch job status object (Anthropic `type: message_batch` + `processing_status`, OpenAI `object: batch` + `status`, "
    "or a list of them): valid, not a model call (skipped)",
    _is_status,
    _status_ids,
    order=20,
)
