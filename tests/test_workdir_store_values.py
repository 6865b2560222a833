"""Reading store rows into Python: `column_values` / `table_rows` must give exactly `to_pylist()`,
with each distinct value of a repeated text column converted once and shared."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.workdir.store import column_values, table_rows
from schemas.logs import REPEATED_TEXT_COLUMNS, REQUEST_SCHEMA


def _table() -> pa.Table:
    system = ["You are the triage model. " * 400, None, "You are the triage model. " * 400, "", "other", None]
    first = pa.table({
        "request_id": [f"r{i}" for i in range(4)],
        "ts": pa.array([datetime(2026, 12, 1, i, tzinfo=UTC) for i in range(3)] + [None], pa.timestamp("us", "UTC")),
        "system_text": system[:4],
        "tools_json": ['[{"name":"a"}]', None, '[{"name":"a"}]', '[{"name":"a"}]'],
        "messages": pa.array([[{"role": "user", "content": "hi"}], None, [], [{"role": "user", "content": None}]],
                             pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
    })
    second = pa.table({
        "request_id": ["r4", "r5"], "ts": pa.array([None, None], pa.timestamp("us", "UTC")),
        "system_text": system[4:], "tools_json": [None, "[]"],
        "messages": pa.array([None, None], first.schema.field("messages").type),
    })
    return pa.concat_tables([first, second])  # two chunks per column


def test_table_rows_equal_to_pylist_across_chunks_and_nulls() -> None:
    table = _table()
    assert table.column("system_text").num_chunks == 2
    assert table_rows(table) == table.to_pylist()
    assert table_rows(table.slice(0, 0)) == []


def test_repeated_values_are_one_object() -> None:
    values = column_values(_table().column("system_text"), repeated=True)
    assert values == _table().column("system_text").to_pylist()
    assert values[0] is values[2]  # the 10 KB prompt converted once
    assert values[1] is None and values[5] is None and values[3] == ""
    plain = column_values(_table().column("system_text"))
    assert plain == values and plain[0] is not plain[2]


def test_repeated_columns_are_store_text_columns() -> None:
    for name in REPEATED_TEXT_COLUMNS:
        assert REQUEST_SCHEMA.field(name).type == pa.string()


def test_dictionary_columns_read_as_their_values() -> None:
    # The dataset's bucket files keep repeated texts dictionary-encoded, one dictionary per batch:
    # chunks with different dictionaries and nulls in the indices.
    table = _table()
    encoded = pa.chunked_array([pc.dictionary_encode(chunk) for chunk in table.column("system_text").chunks])
    assert encoded.chunk(0).dictionary != encoded.chunk(1).dictionary
    values = column_values(encoded, repeated=True)
    assert values == table.column("system_text").to_pylist()
    assert values[0] is values[2]
    with_dictionary = table.set_column(table.schema.get_field_index("system_text"), "system_text", encoded)
    assert table_rows(with_dictionary) == table.to_pylist()
