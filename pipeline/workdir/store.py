"""The read side of the normalized store: every stage after ingest opens it here.

    WORKDIR/.store/v000003/{requests/date=YYYY-MM-DD/*.parquet, rejects/*.jsonl, ingest_manifest.json, state.json}
    WORKDIR/.store/CURRENT   "v000003" (the commit point: a pointer file, `versions.py`)
    WORKDIR/requests       -> .store/v000003/requests   (a convenience link; never read by the tool)

Only ingest writes the store (`pipeline/ingest/writer.py`); readers resolve the pointer and glob
`requests_glob(workdir)` like any hive-partitioned dataset, so a WORKDIR whose links were lost in
a copy reads the same.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipeline.errors import MissingInputError
from pipeline.workdir import versions

STORE_DIR = ".store"


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


def connect_store(workdir: Path, *, memory_limit: str = "3GB", threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the `requests` view over the store (UTC session time zone)."""
    workdir = Path(workdir)
    if not has_requests(workdir):
        raise MissingInputError(f"No ingested requests under `{workdir}/requests`. Run `logaudit ingest LOGS --out {workdir}` first.")
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
    return con


def current_version(workdir: Path) -> Path | None:
    return versions.read_pointer(Path(workdir) / STORE_DIR)
