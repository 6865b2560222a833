"""`writer.rows_to_table`, the ingest's conversion of parsed rows to Arrow: the same table as
`pa.Table.from_pylist(rows, schema=REQUEST_SCHEMA)` whatever the rows hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from pipeline.ingest.rows import new_row
from pipeline.ingest.writer import rows_to_table
from schemas.logs import REQUEST_SCHEMA

T0 = datetime(2026, 9, 1, tzinfo=UTC)


def _rows() -> list[dict]:
    rows = [new_row(request_id=f"r{i}", ts=T0 + timedelta(seconds=i), source_format="envelope", model="gpt-4o",
                    system_text="Réponds en français 🙂" if i % 2 else None, in_uncached=i * 10, is_stream=i % 3 == 0,
                    messages=[{"role": "user", "content": f"question {i}"},
                              {"role": "assistant", "content": None,
                               "tool_calls": [{"id": "c1", "type": "function", "name": "f", "arguments": "{}"}]}])
            for i in range(7)]
    rows[3]["unused_key"] = "ignored"  # a key beyond the schema is ignored, as from_pylist ignores it
    return rows


def test_rows_to_table_is_from_pylist() -> None:
    rows = _rows()
    table = rows_to_table(rows)
    assert table.schema == REQUEST_SCHEMA
    assert table.equals(pa.Table.from_pylist(rows, schema=REQUEST_SCHEMA))
    assert table.column("system_text").to_pylist()[1] == "Réponds en français 🙂"


def test_a_row_without_a_column_reads_it_as_null() -> None:
    rows = _rows()
    del rows[2]["model"]
    table = rows_to_table(rows)
    assert table.equals(pa.Table.from_pylist(rows, schema=REQUEST_SCHEMA))
    assert table.column("model").to_pylist()[2] is None


def test_a_value_of_the_wrong_type_raises_what_from_pylist_raises() -> None:
    """The ingest rejects such a row on its own (stage._flush) on the exception types below."""
    rows = _rows()
    rows[4]["in_uncached"] = "many"
    with pytest.raises((pa.ArrowException, TypeError, ValueError, OverflowError)):
        rows_to_table(rows)


def test_no_rows() -> None:
    assert rows_to_table([]).equals(REQUEST_SCHEMA.empty_table())
