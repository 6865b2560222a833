"""Reading store rows into Python: `column_values` / `table_rows` must give exactly `to_pylist()`,
with each distinct value of a repeated text column converted once and shared."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.workdir.store import (
    StorePartition,
    column_values,
    connect_partition,
    partition_batches,
    table_rows,
)
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


def _messages_column() -> pa.ChunkedArray:
    from schemas.logs import MESSAGE

    call = {"id": "c1", "type": "function", "name": "lookup", "arguments": '{"q": 1}'}
    rows = [
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": None, "tool_calls": [call]},
         {"role": "tool", "content": "42", "tool_call_id": "c1", "name": "lookup"}],
        None,  # no messages logged
        [],
        [{"role": None, "content": "no role", "parts_json": '[{"type": "image"}]', "tool_calls": []}],
        [{"role": "assistant", "content": "", "tool_calls": [call, {**call, "id": None}]}],
    ]
    array = pa.array(rows, pa.list_(MESSAGE))
    return pa.chunked_array([array.slice(1, 3), array.slice(4), array.slice(0, 1)])  # sliced chunks


def test_request_messages_equal_the_messages_of_each_row() -> None:
    """The dataset builds each row's Messages from the flattened `messages` column; they must be
    the Messages `messages_of` builds from `to_pylist` dicts: null and empty lists, a null role
    (user), tool calls absent, empty (None) and present, parts, and sliced chunks."""
    from pipeline.dataset.examples import messages_of, request_messages

    column = _messages_column()
    rows = [{"messages": m, "response_text": "ok"} for m in column.to_pylist()]
    built = request_messages(column)
    assert len(built) == 5 and [len(b) for b in built] == [0, 0, 1, 1, 3]
    for row, request in zip(rows, built, strict=True):
        assert messages_of(dict(row), request) == messages_of(dict(row))
    assert built[2][0].role == "user" and built[2][0].tool_calls is None and built[2][0].parts_json
    assert built[4][1].tool_calls == [{"id": "c1", "type": "function", "name": "lookup", "arguments": '{"q": 1}'}]
    assert request_messages(column.slice(0, 0)) == []


def test_list_values_of_a_sliced_column_index_its_own_rows() -> None:
    from pipeline.workdir.store import list_values

    array = pa.array([[1, 2], None, [3], [], [4, 5, 6]], pa.list_(pa.int64())).slice(2)
    offsets, values = list_values(array)
    assert offsets == [0, 1, 1, 4] and values.to_pylist() == [3, 4, 5, 6]


def test_a_slice_of_a_larger_dictionary_reads_its_own_values() -> None:
    """A batch read from a row group keeps the row group's whole dictionary (`partition_batches`):
    only the values the slice uses are converted, nulls in the indices included."""
    table = _table()
    encoded = pc.dictionary_encode(table.column("system_text").combine_chunks())  # nulls: null indices
    for start, length in ((0, 2), (1, 1), (3, 2), (4, 2), (1, 0)):
        piece = encoded.slice(start, length)
        assert len(piece.dictionary) > len(piece)
        values = column_values(piece, repeated=True)
        assert values == table.column("system_text").to_pylist()[start:start + length]


def _store_file(path: Path, rows: list[dict], drop: tuple[str, ...] = ()) -> None:
    table = pa.Table.from_pylist(rows, schema=REQUEST_SCHEMA)
    pq.write_table(table.drop_columns(list(drop)), path, row_group_size=3)


def test_partition_batches_read_the_files_as_the_partition_view_does(tmp_path: Path) -> None:
    """Rows in the order DuckDB's `requests` view over the partition reads them (file by file), at
    most `batch_rows` a batch, the repeated texts dictionary-encoded, and a column a file lacks null
    (`union_by_name`), whether the files come by path or by value."""
    from pipeline.ingest.rows import new_row

    prompt = "You are the triage model. " * 300
    folder = tmp_path / "store" / "date=2026-12-01"
    folder.mkdir(parents=True)
    rows = [new_row(request_id=f"r{i}", ts=datetime(2026, 12, 1, i, tzinfo=UTC), model="gpt-4o",
                    system_text=[prompt, None, "short"][i % 3], tools_json='[{"name":"a"}]' if i % 2 else None,
                    status_code=[200, 429, None][i % 3], messages=[{"role": "user", "content": f"q{i}"}])
            for i in range(11)]
    _store_file(folder / "part-0000.parquet", rows[:7])
    _store_file(folder / "part-0001.parquet", rows[7:], drop=("status_code", "tools_json"))  # an older file
    columns = ["request_id", "system_text", "tools_json", "status_code", "messages"]
    by_path = StorePartition("date=2026-12-01", tuple(str(p) for p in sorted(folder.glob("*.parquet"))))
    by_value = StorePartition("date=2026-12-01", tuple(p.read_bytes() for p in sorted(folder.glob("*.parquet"))))
    con = connect_partition(by_path, tmp_path / "view", "256MB")
    try:
        expected = con.sql(f"SELECT {', '.join(columns)} FROM requests").to_arrow_table().to_pylist()
    finally:
        con.close()
    assert [r["status_code"] for r in expected][7:] == [None] * 4
    for part, tmp in ((by_path, tmp_path / "a"), (by_value, tmp_path / "b")):
        tmp.mkdir()
        batches = list(partition_batches(part, tmp, columns, batch_rows=2))
        assert max(b.num_rows for b in batches) == 2
        assert all(b.schema.names == columns for b in batches)
        assert pa.types.is_dictionary(batches[0].schema.field("system_text").type)
        assert [r for b in batches for r in table_rows(b)] == expected
