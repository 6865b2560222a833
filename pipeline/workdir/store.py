"""The read side of the normalized store: every stage after ingest opens it here.

    WORKDIR/.store/v000003/{requests/date=YYYY-MM-DD/*.parquet, rejects/*.jsonl, ingest_manifest.json, state.json}
    WORKDIR/.store/current -> v000003
    WORKDIR/requests       -> .store/current/requests

Only ingest writes the store (`pipeline/ingest/writer.py`); readers glob `WORKDIR/requests/*/*.parquet`
like any hive-partitioned dataset.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipeline.errors import StoreError
from pipeline.sql import SqlDir

STORE_DIR = ".store"
# Store-wide SQL: the request-outcome macros every connection gets.
SQL = SqlDir("pipeline.workdir")


def sql_literal(value: str | Path | list) -> str:
    """A SQL string (or list of strings) literal; DDL such as CREATE VIEW cannot take parameters."""
    if isinstance(value, list):
        return "[" + ", ".join(sql_literal(v) for v in value) + "]"
    return "'" + str(value).replace("'", "''") + "'"


def requests_glob(workdir: Path) -> str:
    return str(Path(workdir) / "requests" / "*" / "*.parquet")


def has_requests(workdir: Path) -> bool:
    return any((Path(workdir) / "requests").glob("*/*.parquet"))


def connect_store(workdir: Path, *, memory_limit: str = "3GB", threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the `requests` view over the store (UTC session time zone) and the
    request-outcome macros (`request_failed`, `request_succeeded`, `request_rate_limited`,
    `request_server_error`: `sql/request_outcome.sql`), the one definition every stage uses."""
    workdir = Path(workdir)
    if not has_requests(workdir):
        raise StoreError(f"No ingested requests under `{workdir}/requests`. Run `logaudit ingest LOGS --out {workdir}` first.")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    tmp = workdir / ".duckdb_tmp"
    con.execute(f"SET temp_directory = {sql_literal(tmp)}")
    con.execute(
        "CREATE VIEW requests AS SELECT * FROM read_parquet("
        f"{sql_literal(requests_glob(workdir))}, hive_partitioning = true, union_by_name = true)"
    )
    SQL.execute(con, "request_outcome")
    return con


def current_version(workdir: Path) -> Path | None:
    cur = Path(workdir) / STORE_DIR / "current"
    return cur.resolve() if cur.is_symlink() and cur.resolve().is_dir() else None
