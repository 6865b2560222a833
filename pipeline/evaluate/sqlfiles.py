"""The eval stage's `.sql` files (`pipeline/evaluate/sql/`), run through the one runner (`pipeline/sql.py`)."""

from __future__ import annotations

from typing import Any

import duckdb

from pipeline.sql import SqlDir

SQL = SqlDir("pipeline.evaluate")


def fetch(name: str, **params: Any) -> list[dict[str, Any]]:
    """Rows of `sql/<name>.sql` as dicts, on a fresh in-memory DuckDB (the eval reads Parquet files only)."""
    con = duckdb.connect()
    try:
        return SQL.fetch_dicts(con, name, **params)
    finally:
        con.close()
