"""The eval stage's `.sql` files (`pipeline/evaluate/sql/`): one query each behind a `-- name:` /
`-- params:` header; values always travel as named `$params`."""

from __future__ import annotations

import functools
import re
from importlib import resources
from typing import Any

import duckdb


@functools.cache
def load_sql(name: str) -> tuple[str, tuple[str, ...]]:
    text = resources.files("pipeline.evaluate").joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")
    header = dict(re.findall(r"^--\s*(name|params):\s*(.*)$", text, flags=re.MULTILINE))
    if header.get("name", "").strip() != name:
        raise ValueError(f"pipeline/evaluate/sql/{name}.sql: `-- name:` must be {name!r}")
    params = tuple(p.strip() for p in header.get("params", "").split(",") if p.strip() not in ("", "-"))
    return text, params


def fetch(name: str, **params: Any) -> list[dict[str, Any]]:
    """Rows of `sql/<name>.sql` as dicts, on a fresh in-memory DuckDB, bound to the declared params."""
    sql, declared = load_sql(name)
    if set(declared) != set(params):
        raise ValueError(f"{name}.sql declares params {declared}; got {sorted(params)}")
    con = duckdb.connect()
    try:
        rel = con.sql(sql, params=params or None)
        cols = rel.columns
        return [dict(zip(cols, row, strict=True)) for row in rel.fetchall()]
    finally:
        con.close()
