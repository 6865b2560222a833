"""The report's own `.sql` files (`pipeline/report/sql/`): one query each, `-- name:` / `-- params:` header.

These only read: counts over the store and the audit's Parquet tables that no audit section
carries (daily request counts, latency bins). Values always travel as named `$params`.
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from typing import Any

import duckdb


@functools.cache
def load_sql(name: str) -> tuple[str, tuple[str, ...]]:
    text = resources.files("pipeline.report").joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")
    header = dict(re.findall(r"^--\s*(name|params):\s*(.*)$", text, flags=re.MULTILINE))
    if header.get("name", "").strip() != name:
        raise ValueError(f"pipeline/report/sql/{name}.sql: `-- name:` must be {name!r}")
    params = tuple(p.strip() for p in header.get("params", "").split(",") if p.strip() not in ("", "-"))
    return text, params


def fetch(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> list[dict[str, Any]]:
    """Rows of `sql/<name>.sql` as dicts, bound to exactly the params its header declares."""
    sql, declared = load_sql(name)
    if set(declared) != set(params):
        raise ValueError(f"{name}.sql declares params {declared}; got {sorted(params)}")
    rel = con.sql(sql, params=params or None)
    cols = rel.columns
    return [dict(zip(cols, row, strict=True)) for row in rel.fetchall()]
