"""The keys a worker computes for the rows it stages (`writer._staged_keys`, row_keys.sql) and the
time order of a staged file: the commit dedupes on those keys against keys it computes over the
stored files with `record_fp` itself, so the two must agree to the bit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest

from pipeline.ingest.rows import new_row
from pipeline.ingest.writer import _connection, _in_time_order, _staged_keys
from pipeline.workdir.store import dictionary_encoded
from schemas.logs import REQUEST_SCHEMA

T0 = datetime(2026, 9, 1, tzinfo=UTC)
PROMPT_A = "You are a support agent. " * 400  # ~10 KB, as the bench's system prompts
PROMPT_B = PROMPT_A + "Réponds en français, sans émoji 🙂."  # UTF-8 beyond ASCII: md5 of the same bytes


def _row(i: int, system: str | None, **extra: Any) -> dict[str, Any]:
    return new_row(
        request_id=f"r{i}", ts=T0 + timedelta(seconds=i), source_format="envelope", source_file="/logs/a.jsonl",
        source_line=i + 1, model="gpt-4o", system_text=system, response_text=f"answer {i % 3}",
        messages=[{"role": "user", "content": f"question {i % 5}"}], **extra,
    )


@pytest.mark.parametrize("staged_as", ["strings", "dictionary"])
def test_staged_fingerprints_are_record_fp_of_every_row(staged_as: str) -> None:
    """Repeated, distinct and missing system prompts, and batch halves (whose request fingerprint
    reads the system text itself): the md5 of each distinct prompt, computed once, gives exactly
    `record_fp` and `batch_request_fp` row by row, in row order, whether the staged prompts are
    strings or dictionary-encoded per file (as `Spool` writes them)."""
    rows = [_row(i, [PROMPT_A, PROMPT_B, None, "", PROMPT_A][i % 5]) for i in range(40)]
    rows += [_row(40, PROMPT_B, is_batch=True), _row(41, None, is_batch=True, response_id="msg_1")]
    table = pa.Table.from_pylist(rows, schema=REQUEST_SCHEMA)
    # staged as two files of the batch, the second's rows in two row groups: the prompts' digests
    # are found chunk by chunk
    parts = [table.slice(0, 17), table.slice(17, 11), table.slice(28)]
    if staged_as == "dictionary":
        parts = [dictionary_encoded(p) for p in parts]
        assert pa.types.is_dictionary(parts[0].schema.field("system_text").type)
    con = _connection(threads=1)
    try:
        keys = _staged_keys(con, [("u000001-000000.parquet", parts[:1]), ("u000001-000001.parquet", parts[1:])])
        con.register("staged", table)
        expected = con.sql(
            "SELECT record_fp(source_format, response_id, ts, model, response_text, error_type, system_text, messages), "
            "batch_request_fp(system_text, messages, request_params, tools_json) FROM staged").fetchall()
    finally:
        con.close()
    assert keys.column("_row").to_pylist() == list(range(17)) + list(range(len(rows) - 17))
    assert keys.column("request_id").to_pylist() == [r["request_id"] for r in rows]
    assert keys.column("_fp").to_pylist() == [fp for fp, _ in expected]
    assert len(set(keys.column("_fp").to_pylist()[:5])) == 5  # the prompt changes the fingerprint
    assert keys.column("_req_fp").to_pylist()[40:] == [req for _, req in expected][40:]
    assert keys.column("_req_fp").to_pylist()[0] is None  # not a batch row


def _times(table: pa.Table) -> list[Any]:
    return table.column("ts").to_pylist()


@pytest.mark.parametrize("order", ["sorted", "ties", "unsorted", "nulls"])
def test_staged_rows_are_in_time_order(order: str) -> None:
    seconds: list[int | None] = {
        "sorted": [0, 1, 2, 3, 4, 5],
        "ties": [0, 1, 1, 1, 2, 2],
        "unsorted": [3, 1, 2, 1, 0, 5],
        "nulls": [2, None, 0, 1, None, 3],
    }[order]
    rows = [new_row(request_id=f"r{i}", ts=None if s is None else T0 + timedelta(seconds=s))
            for i, s in enumerate(seconds)]
    table = pa.Table.from_pylist(rows, schema=REQUEST_SCHEMA)
    out = _in_time_order(table)
    # the stable sort, nulls last: rows with equal times keep their order
    assert out.equals(table.sort_by([("ts", "ascending")]))
    assert (out is table) == (order in ("sorted", "ties"))  # no copy when already in order
    if order == "unsorted":
        assert out.column("request_id").to_pylist() == ["r4", "r1", "r3", "r2", "r0", "r5"]
