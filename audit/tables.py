"""Run the `.sql` files of the cost, cache and traffic audits and write their results atomically.

Each file in `audit/sql/` holds one query behind a comment header DuckDB ignores:

    -- name: cost_by_model            (equals the file stem)
    -- params: grain                  (named `$params` the query uses; DuckDB rejects unused ones)
    -- description: ...

Values always travel as parameters, never formatted into the SQL text.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import AuditError
from pipeline.workdir.store import sql_literal

SQL_DIR = Path(__file__).with_name("sql")


def open_store(workdir: Path) -> duckdb.DuckDBPyConnection:
    """`connect_store` without DuckDB's progress bar (it would interleave with the CLI output)."""
    from pipeline.workdir.store import connect_store

    con = connect_store(workdir)
    con.execute("SET enable_progress_bar = false")
    return con


@dataclass(frozen=True)
class SqlFile:
    name: str
    params: tuple[str, ...]
    description: str
    sql: str


@functools.cache
def load_sql(name: str) -> SqlFile:
    path = SQL_DIR / f"{name}.sql"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise AuditError(f"SQL file `{path}` is missing; reinstall llm-log-audit.") from e
    header: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^--\s*(name|params|description):\s*(.*)$", line)
        if m:
            header[m.group(1)] = m.group(2).strip()
        elif line.strip() and not line.startswith("--"):
            break
    if header.get("name") != name:
        raise AuditError(f"SQL file `{path}`: header `-- name:` must be {name!r}, found {header.get('name')!r}.")
    params = tuple(p.strip() for p in header.get("params", "").split(",") if p.strip() and p.strip() != "-")
    return SqlFile(name, params, header.get("description", ""), text)


def query(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> duckdb.DuckDBPyRelation:
    """`audit/sql/<name>.sql` as a relation, bound to exactly the parameters its header declares."""
    q = load_sql(name)
    missing = set(q.params) - set(params)
    extra = set(params) - set(q.params)
    if missing or extra:
        raise ValueError(f"{name}.sql declares params {q.params}; got {sorted(params)}")
    return con.sql(q.sql, params={k: params[k] for k in q.params} if q.params else None)


def fetch_dicts(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> list[dict[str, Any]]:
    rel = query(con, name, **params)
    cols = rel.columns
    return [dict(zip(cols, row, strict=True)) for row in rel.fetchall()]


def write_query(con: duckdb.DuckDBPyConnection, name: str, path: Path, **params: Any) -> int:
    """Stream the result of a SQL file into Parquet at `path` (tmp name, then rename). Returns rows."""
    reader = query(con, name, **params).to_arrow_reader(50_000)
    return write_batches(reader.schema, reader, path)


def write_batches(schema: pa.Schema, batches: Any, path: Path) -> int:
    """Write record batches to `path` atomically: readers see the old file or the whole new one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    rows = 0
    try:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for batch in batches:
                if batch.num_rows:
                    writer.write_batch(batch)
                    rows += batch.num_rows
        os.replace(tmp, path)
    finally:
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
