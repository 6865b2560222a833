"""The dataset's partition writer (`bucket.write_buckets`): every row lands in its bucket's files,
exactly once, whatever the batches, chunks and open-file limit; a bucket's rows read back as the
store's values; and the writes follow the chunks, not the reader's batches (cutting every small
batch per bucket made the step grow with rows x buckets)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipeline.dataset.bucket import _read_rows, _read_stream, bucket_files, write_buckets
from pipeline.workdir.store import table_rows

BUCKETS = 7


def _rows(n: int) -> pa.Table:
    prompts = [f"You are assistant {k}. " + "Follow the house style. " * 40 for k in range(3)]
    return pa.table({
        "request_id": [f"req-{i:05d}" for i in range(n)],
        "ts": pa.array([1_700_000_000_000_000 + 1_000 * (i % 97) for i in range(n)], pa.timestamp("us", tz="UTC")),
        "system_text": [None if i % 11 == 0 else prompts[i % 3] for i in range(n)],
        "tools_json": [None if i % 2 else '[{"name": "lookup"}]' for i in range(n)],
        "messages": [[{"role": "user", "content": f"question {i}"}] for i in range(n)],
        "bucket": pa.array([(i * 5) % BUCKETS for i in range(n)], pa.int64()),
    })


def _reader(table: pa.Table, batch_rows: int) -> pa.RecordBatchReader:
    return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=batch_rows))


def _expected(table: pa.Table, bucket: int) -> pa.Table:
    rows = table.filter(pc.equal(table.column("bucket"), bucket)).drop_columns(["bucket"])
    return rows.sort_by([("ts", "ascending"), ("request_id", "ascending")])


@pytest.mark.parametrize(("chunk_bytes", "max_open"), [(1 << 30, 1024), (20_000, 1024), (20_000, 2)])
def test_every_row_lands_once_in_its_bucket(tmp_path: Path, chunk_bytes: int, max_open: int) -> None:
    table = _rows(1_000)
    filled = write_buckets(_reader(table, 16), tmp_path, max_open=max_open, chunk_bytes=chunk_bytes)
    assert filled == list(range(BUCKETS))
    for bucket in filled:
        got = _read_rows(bucket_files(tmp_path / f"bucket={bucket}"))
        assert table_rows(got) == _expected(table, bucket).to_pylist()
    if max_open == 2:  # files closed to stay under the limit are continued in new part files
        assert any(len(bucket_files(tmp_path / f"bucket={b}")) > 1 for b in filled)


def test_repeated_texts_are_stored_once_per_write(tmp_path: Path) -> None:
    write_buckets(_reader(_rows(1_000), 16), tmp_path)
    stored = _read_stream(bucket_files(tmp_path / "bucket=0")[0])
    assert pa.types.is_dictionary(stored.schema.field("system_text").type)
    assert pa.types.is_dictionary(stored.schema.field("tools_json").type)
    assert len(stored.column("system_text").chunk(0).dictionary) == 3  # three prompts over ~140 rows


def test_writes_follow_chunks_not_reader_batches(tmp_path: Path) -> None:
    # 63 reader batches of 16 rows, one chunk: each bucket is written once, as one batch.
    write_buckets(_reader(_rows(1_000), 16), tmp_path, chunk_bytes=1 << 30)
    for bucket in range(BUCKETS):
        [path] = bucket_files(tmp_path / f"bucket={bucket}")
        with pa.OSFile(str(path), "rb") as source:
            assert sum(1 for _ in pa.ipc.open_stream(source)) == 1
