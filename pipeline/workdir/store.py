"""The read side of the normalized store: every stage after ingest opens it here.

    WORKDIR/.store/v000003/{requests/date=YYYY-MM-DD/*.parquet, rejects/*.jsonl, ingest_manifest.json, state.json}
    WORKDIR/.store/CURRENT   "v000003" (the commit point: a pointer file, `versions.py`)
    WORKDIR/requests       -> .store/v000003/requests   (a convenience link; never read by the tool)

Only ingest writes the store (`pipeline/ingest/writer.py`); readers resolve the pointer and glob
`requests_glob(workdir)` like any hive-partitioned dataset, so a WORKDIR whose links were lost in
a copy reads the same.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.errors import MissingInputError
from pipeline.sql import SqlDir
from pipeline.workdir import versions
from schemas.logs import REPEATED_TEXT_COLUMNS, REQUEST_SCHEMA

TableLike = TypeVar("TableLike", pa.Table, pa.RecordBatch)

STORE_DIR = ".store"
# Store-wide SQL: the request-outcome macros every connection gets.
SQL = SqlDir("pipeline.workdir")


def sql_literal(value: str | Path | list) -> str:
    """A SQL string (or list of strings) literal; DDL such as CREATE VIEW cannot take parameters."""
    if isinstance(value, list):
        return "[" + ", ".join(sql_literal(v) for v in value) + "]"
    return "'" + str(value).replace("'", "''") + "'"


def store_path(workdir: Path, name: str) -> Path:
    """`name` (requests, rejects, ingest_manifest.json, state.json) in the current store version."""
    cur = current_version(workdir)
    return cur / name if cur is not None else Path(workdir) / name


def requests_dir(workdir: Path) -> Path:
    """The current version's `requests/` folder (resolved through the pointer, never a symlink)."""
    return store_path(workdir, "requests")


def requests_glob(workdir: Path) -> str:
    return str(requests_dir(workdir) / "*" / "*.parquet")


def has_requests(workdir: Path) -> bool:
    return any(requests_dir(workdir).glob("*/*.parquet"))


def connect_store(workdir: Path, *, memory_limit: str = "1GB", threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the `requests` view over the store (UTC session time zone) and the
    request-outcome macros (`request_failed`, `request_succeeded`, `request_rate_limited`,
    `request_server_error`: `sql/request_outcome.sql`), the one definition every stage uses.

    1 GB, not more: beside it run the executor's workers, and the whole process tree is to stay
    under 2 GB; DuckDB spills sorts and joins beyond the limit to `WORKDIR/.duckdb_tmp`.
    """
    workdir = Path(workdir)
    if not has_requests(workdir):
        raise MissingInputError(missing_store_message(workdir))
    return connect_requests(requests_glob(workdir), memory_limit=memory_limit, threads=threads,
                            temp_directory=workdir / ".duckdb_tmp")


def connect_requests(files: str | list[str], *, memory_limit: str, temp_directory: Path,
                     threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """`connect_store`'s connection over some of the store's Parquet files (a glob, or a list such
    as one date partition's files copied by a task: `WORKDIR/requests/date=D/*.parquet` layout, so
    the `date` column is the same)."""
    con = outcome_connection(memory_limit, threads=threads, temp_directory=temp_directory)
    con.execute(
        "CREATE VIEW requests AS SELECT * FROM read_parquet("
        f"{sql_literal(files)}, hive_partitioning = true, union_by_name = true)"
    )
    return con


def outcome_connection(memory_limit: str, threads: int | None = 1,
                       temp_directory: Path | None = None) -> duckdb.DuckDBPyConnection:
    """The one way a store connection is opened: UTC, `memory_limit` (spilling to `temp_directory`),
    `threads` (None: DuckDB's default), the request-outcome macros, and no DuckDB progress bar (it
    would interleave with the CLI's output; tasks report progress through the executor). Without a
    view it serves a task that reads its partition's files itself (`partition_batches`) and applies
    the store's outcome rule to them; `connect_requests` adds the `requests` view."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    con.execute("SET memory_limit = $limit", {"limit": memory_limit})
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if temp_directory is not None:
        con.execute(f"SET temp_directory = {sql_literal(temp_directory)}")
    SQL.execute(con, "request_outcome")
    return con


def date_partitions(workdir: Path) -> list[tuple[str, list[Path]]]:
    """The store's date partitions in name order (`date=YYYY-MM-DD`, `date=undated`), each with its
    Parquet files in name order: the order `requests_glob` reads them in."""
    root = requests_dir(workdir)
    parts = [(d.name, sorted(d.glob("*.parquet"))) for d in sorted(root.iterdir()) if d.is_dir()]
    return [(name, files) for name, files in parts if files]



@dataclass(frozen=True)
class StorePartition:
    """A task's input: one date partition of the store, its Parquet files by path when the task can
    read the driver's disk (a local pool), else by value (Ray: the bytes travel through the object
    store)."""

    name: str  # `date=YYYY-MM-DD` or `date=undated`
    files: tuple[bytes | str, ...]


@dataclass(frozen=True)
class StorePartitions:
    """The store's date partitions as task inputs, listed once (`len` is the map's task total); by
    value, a partition's files are read only when the map asks for it."""

    listed: list[tuple[str, list[Path]]]
    by_value: bool

    def __len__(self) -> int:
        return len(self.listed)

    def __iter__(self) -> Iterator[StorePartition]:
        for name, files in self.listed:
            yield StorePartition(name, tuple(f.read_bytes() if self.by_value else str(f) for f in files))


def store_partitions(workdir: Path, by_value: bool) -> StorePartitions:
    """The store's date partitions as task inputs (see `StorePartitions`), largest first: a pool's
    last tasks are then its smallest, and no worker waits out a big day alone at the end of a pass
    (a weekday is 3-5x a weekend day). Callers put the outputs back in name order."""
    listed = date_partitions(workdir)
    return StorePartitions(sorted(listed, key=lambda p: -sum(f.stat().st_size for f in p[1])), by_value)


def connect_partition(part: StorePartition, tmp: Path, memory_limit: str) -> duckdb.DuckDBPyConnection:
    """A task's one-thread DuckDB over its partition's files (`partition_files`) as the `requests`
    view. One thread and the files in order make the rows' order depend only on the partition.
    DuckDB spills beyond `memory_limit` to `tmp`."""
    return connect_requests(partition_files(part, tmp), memory_limit=memory_limit, threads=1,
                            temp_directory=tmp / "duckdb_tmp")


def partition_files(part: StorePartition, tmp: Path) -> list[str]:
    """The partition's Parquet files as paths, in order; files that came by value are written under
    `tmp` (a folder of the task's own, in the store's `date=D/` layout) first."""
    folder = tmp / part.name
    files = []
    for i, data in enumerate(part.files):
        if isinstance(data, str):
            files.append(data)
            continue
        folder.mkdir(exist_ok=True)
        path = folder / f"part-{i:04d}.parquet"
        path.write_bytes(data)
        files.append(str(path))
    return files


def partition_batches(part: StorePartition, tmp: Path, columns: list[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
    """The partition's `columns` (of REQUEST_SCHEMA) as record batches of at most `batch_rows`, read
    straight from its Parquet files in the order `connect_partition`'s view reads them (file by file,
    row by row), with the repeated text columns (`REPEATED_TEXT_COLUMNS`) dictionary-encoded as
    stored: a prompt sent by thousands of requests is decoded once per row group, where DuckDB's
    Arrow export copied it into every row (~8 KB a row, most of the prepare task's reading). A
    column a file lacks (written before the column existed) is null, as `union_by_name` reads it."""
    for path in partition_files(part, tmp):
        footer = pq.read_metadata(path)  # read once: which columns the file has, then its reader's
        stored = set(footer.schema.to_arrow_schema().names)
        present = [c for c in columns if c in stored]
        file = pq.ParquetFile(path, metadata=footer, read_dictionary=[c for c in present if c in REPEATED_TEXT_COLUMNS])
        for batch in file.iter_batches(batch_size=batch_rows, columns=present, use_threads=False):
            if len(present) < len(columns):
                batch = pa.RecordBatch.from_arrays(
                    [batch.column(c) if c in present else pa.nulls(batch.num_rows, REQUEST_SCHEMA.field(c).type)
                     for c in columns], names=columns)
            yield batch


def missing_store_message(workdir: Path) -> str:
    """Why there is nothing to read in `workdir`, and what to run: never ingested, or everything
    ingested so far was rejected or skipped."""
    workdir = Path(workdir)
    cur = current_version(workdir)
    if cur is None:
        return f"No store in `{workdir}`: nothing was ingested there yet. Run `logaudit ingest LOGS --out {workdir}` first."
    lines = 0
    try:
        runs = json.loads((cur / "state.json").read_text(encoding="utf-8")).get("runs", [])
        lines = sum(int(r.get("totals", {}).get("lines_read", 0)) for r in runs)
    except (OSError, ValueError):
        pass
    return (
        f"The store in `{workdir}` holds no requests: all {lines} record(s) ingested so far were rejected or "
        f"skipped (reasons in `{cur / 'rejects'}`). Check the input with `logaudit formats`, then "
        f"`logaudit ingest LOGS --out {workdir}`."
    )


def store_identity(workdir: Path) -> dict[str, str | None]:
    """What a stage output records as the store it was computed from: the version name, and a
    fingerprint of its files (names and sizes; an ingest that added nothing keeps it)."""
    cur = current_version(workdir)
    h = hashlib.sha256()
    if cur is not None:
        for f in sorted([*cur.glob("requests/*/*.parquet"), *cur.glob("rejects/*.jsonl")]):
            h.update(f"{f.parent.name}/{f.name}:{f.stat().st_size}\n".encode())
    return {"version": cur.name if cur is not None else None, "fingerprint": h.hexdigest()}


def current_version(workdir: Path) -> Path | None:
    return versions.read_pointer(Path(workdir) / STORE_DIR)


def dictionary_encoded(table: TableLike) -> TableLike:
    """The table (or batch) with its repeated text columns (`REPEATED_TEXT_COLUMNS`) dictionary-
    encoded: a few hundred ~8 KB system prompts repeat over thousands of rows. Written to Parquet
    this way, each column chunk holds one copy of each prompt and the writer hashes none (given
    strings, it hashed every row's prompt, gave up its dictionary past 1 MB and stored each copy
    plain: 5 KB a row uncompressed in the 1 M bench's store); a reader decodes, and DuckDB
    evaluates an expression over, each distinct prompt once."""
    for i, name in enumerate(table.schema.names):
        if name in REPEATED_TEXT_COLUMNS and not pa.types.is_dictionary(table.schema.field(i).type):
            table = table.set_column(i, name, pc.dictionary_encode(table.column(i)))
    return table


def column_values(column: pa.Array | pa.ChunkedArray, repeated: bool = False) -> list[Any]:
    """`column.to_pylist()`; `repeated`: each distinct value is converted once and shared, so a
    10 KB system prompt sent by 2,000 requests becomes one Python string, not 2,000 (its conversion
    was a third of `to_pylist` on the dataset's rows, and as much memory as the rest of the row)."""
    if not repeated:
        return column.to_pylist()
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()  # dictionary chunks: one unified dictionary
    if not pa.types.is_dictionary(column.type):  # (the dataset's bucket files come encoded)
        column = pc.dictionary_encode(column, null_encoding="encode")
    dictionary, indices = column.dictionary, column.indices
    if len(dictionary) > len(indices):  # a slice of a row group's dictionary (partition_batches): its values only
        used, codes = np.unique(pc.fill_null(indices, -1).to_numpy(), return_inverse=True)
        values = dictionary.take(pa.array(used[used >= 0])).to_pylist()
        if len(used) and used[0] < 0:
            values.insert(0, None)
        return [values[i] for i in codes.tolist()]
    values = dictionary.to_pylist()
    if indices.null_count:  # an encoded column's nulls sit in its indices, not in its dictionary
        indices = pc.fill_null(indices, len(values))
        values.append(None)
    return [values[i] for i in indices.to_numpy(zero_copy_only=False).tolist()]


def list_values(column: pa.Array | pa.ChunkedArray) -> tuple[list[int], pa.Array]:
    """A list column as (offsets from 0, the values they index): row i's items are
    `values[offsets[i]:offsets[i + 1]]`, a null list none. For reading a list of structs field by
    field (a dict per item costs several times the Arrow)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    offsets = column.offsets.to_numpy()  # a slice's offsets point into its parent's values
    first = int(offsets[0]) if len(offsets) else 0
    values = column.values.slice(first, int(offsets[-1]) - first if len(offsets) else 0)
    return (offsets - first).tolist(), values


def string_values(column: pa.Array) -> list[Any]:
    """`column.to_pylist()` of a string column, through numpy (faster for many short strings)."""
    return column.to_numpy(zero_copy_only=False).tolist()


def present_values(column: pa.Array) -> dict[int, Any]:
    """{index: value} of a column's non-null values, only those converted (for a rarely set
    column such as a message's tool calls)."""
    if column.null_count == len(column):
        return {}
    valid = pc.indices_nonzero(column.is_valid())
    return dict(zip(valid.to_pylist(), column.take(valid).to_pylist(), strict=True))


def table_rows(table: pa.Table | pa.RecordBatch) -> list[dict[str, Any]]:
    """`table.to_pylist()`, the repeated text columns (`REPEATED_TEXT_COLUMNS`) by `column_values`."""
    names = table.column_names
    columns = [column_values(table.column(n), n in REPEATED_TEXT_COLUMNS) for n in names]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
