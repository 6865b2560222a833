"""The audit's tables: open the store, run `audit/sql/*.sql` (through `pipeline/sql.py`) and write
the results to `WORKDIR/audit/*.parquet` atomically.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.executor import Executor, executor_config, memory_share, processes_with_tasks
from pipeline.sql import SqlDir
from pipeline.workdir.store import connect_store, sql_literal

# DuckDB's memory limit in the audit's driver (one connection at a time) is its share of the run's
# memory budget, `[run] memory_mb` (pipeline.executor.memory_share); beyond it, sorts, joins and
# temp tables spill to WORKDIR/.duckdb_tmp. DuckDB's process holds ~0.5 GB more than its limit
# (strings of fetched results, per-thread state), which the share's headroom covers:
# - driver-only modules (cost, tasks, traffic) run with no pool workers alive
#   (`Executor.release`): the driver's share alone, 1 GB at the default budget; task clustering's
#   temp tables need it at 1 M requests (at a quarter of that limit per request, 128 MB for 250k
#   requests, `tasks_user_skeletons` runs out of memory);
# - the cache module's connections run beside the pool's workers (~0.3-0.6 GB each): a share of
#   the driver and the workers together, 512 MB beside two (at 1 GB the tree reached 2.2 GB at 1 M).


def driver_memory_limit(config: dict[str, Any] | None = None, beside: Executor | None = None) -> str:
    """The driver's DuckDB limit: alone, or beside the tasks `beside` runs at once."""
    return memory_share(executor_config(config or {}).memory_mb, processes_with_tasks(beside) if beside else 1)


def open_store(workdir: Path, memory_limit: str | None = None, *,
               config: dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
    """`connect_store` limited to `memory_limit` (default: the driver's share alone of `config`'s
    budget)."""
    return connect_store(workdir, memory_limit=memory_limit or driver_memory_limit(config))


# The audit's SQL files, run through the one runner (pipeline/sql.py).
SQL = SqlDir("audit")
load_sql = SQL.load
query = SQL.query
fetch_dicts = SQL.fetch_dicts
temp_table = SQL.temp_table


def write_query(con: duckdb.DuckDBPyConnection, name: str, path: Path, **params: Any) -> int:
    """Stream the result of a SQL file into Parquet at `path` (tmp name, then rename). Returns rows."""
    reader = query(con, name, **params).to_arrow_reader(50_000)
    return write_batches(reader.schema, reader, path)


def write_batches(schema: pa.Schema, batches: Any, path: Path) -> int:
    """Write record batches to `path` atomically: readers see the old file or the whole new one."""
    return write_parallel(schema, [path], ([b] for b in batches))[0]


def write_parallel(schema: pa.Schema, paths: list[Path], items: Iterable[Sequence[Any]]) -> list[int]:
    """Write the i-th record batch or table of each item to `paths[i]`, every file atomically (tmp
    name, then rename), so several outputs of one stream never wait in memory. Returns rows per file."""
    tmps = [Path(p).with_name(f".{Path(p).name}.tmp{os.getpid()}") for p in paths]
    rows = [0] * len(paths)
    try:
        with contextlib.ExitStack() as stack:
            writers = [stack.enter_context(pq.ParquetWriter(t, schema, compression="zstd")) for t in tmps]
            for item in items:
                for i, (writer, part) in enumerate(zip(writers, item, strict=True)):
                    if part.num_rows:
                        writer.write(part)
                        rows[i] += part.num_rows
        for tmp, path in zip(tmps, paths, strict=True):
            os.replace(tmp, path)
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
    return rows


def write_table(table: pa.Table, path: Path) -> int:
    return write_batches(table.schema, table.to_batches(), path)


def attach_parquet_view(con: duckdb.DuckDBPyConnection, view: str, path: Path, empty_sql: str) -> bool:
    """Create `view` over a Parquet file, or over `empty_sql` (a typed zero-row SELECT) when the
    file is absent, so queries that LEFT JOIN optional tables run either way."""
    if Path(path).is_file():
        con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM read_parquet({sql_literal(path)})")
        return True
    con.execute(f"CREATE OR REPLACE VIEW {view} AS {empty_sql}")
    return False


def attach_labels(con: duckdb.DuckDBPyConnection, out_dir: Path) -> bool:
    """`request_labels` (from audit.tasks) with at least request_id and task_type; empty when the
    tasks audit has not run, so per-task breakdowns fall back to `unlabeled`."""
    return attach_parquet_view(
        con,
        "request_labels",
        Path(out_dir) / "request_labels.parquet",
        "SELECT NULL::VARCHAR AS request_id, NULL::VARCHAR AS task_type WHERE false",
    )
