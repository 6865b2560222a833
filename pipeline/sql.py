"""The one runner for the headed `.sql` files that live next to the code that runs them.

Every file holds one statement (a query, or a CREATE / INSERT) behind a comment header DuckDB ignores:

    -- name: cost_by_model                  (equals the file stem)
    -- params: grain, since                 (the named `$params` the statement uses; `-` for none)
    -- identifiers: table                   (optional: `{table}` slots a driver composes, e.g. psycopg.sql)
    -- description: what it computes, in a sentence or two

Loading checks the header against the text (the name is the stem, the declared params are exactly
the `$params` the statement uses, a description is present); running checks the caller passes
exactly the declared params. Values always travel as bound parameters, never formatted into SQL.
DuckDB files use `$name`; the one Postgres file (ingest's LiteLLM source, run by psycopg) uses
`%(name)s` and composes its table name as an identifier. Every failure is a `SqlError`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any

import duckdb

from pipeline.errors import SqlError

_HEADER = re.compile(r"^--\s*(name|params|identifiers|description):\s*(.*)$")
# `$name` (DuckDB) or `%(name)s` (psycopg).
_PARAM = re.compile(r"\$([a-z_][a-z0-9_]*)|%\(([a-z_][a-z0-9_]*)\)s")
_IDENTIFIER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


@dataclass(frozen=True)
class SqlFile:
    name: str
    params: tuple[str, ...]
    description: str
    sql: str  # the whole file, header included (DuckDB ignores the comments)
    path: str
    identifiers: tuple[str, ...] = ()

    @property
    def body(self) -> str:
        """The statement without its comment lines (to embed it, e.g. after `CREATE TABLE x AS`)."""
        return "\n".join(line for line in self.sql.splitlines() if not line.lstrip().startswith("--"))


def parse_sql_file(name: str, text: str, path: str) -> SqlFile:
    """Read and check the header of one file's `text`."""
    header: dict[str, str] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = _HEADER.match(line)
        if m:
            value = m.group(2).strip()
            # A description may continue on indented comment lines.
            if m.group(1) == "description":
                for more in lines[i + 1 :]:
                    if not more.startswith("--   "):
                        break
                    value += " " + more[2:].strip()
            header[m.group(1)] = value
        elif line.strip() and not line.startswith("--"):
            break
    if header.get("name") != name:
        raise SqlError(f"SQL file `{path}`: header `-- name:` must be {name!r}, found {header.get('name')!r}.")
    if not header.get("description"):
        raise SqlError(f"SQL file `{path}`: header `-- description:` is missing.")
    declared = _names(header.get("params", ""))
    identifiers = _names(header.get("identifiers", ""))
    code = "\n".join(line for line in lines if not line.lstrip().startswith("--"))
    used = {a or b for a, b in _PARAM.findall(code)}
    if used != set(declared):
        raise SqlError(
            f"SQL file `{path}`: header `-- params:` declares {sorted(declared)} but the statement uses {sorted(used)}."
        )
    slots = set(_IDENTIFIER.findall(code))
    if slots != set(identifiers):
        raise SqlError(
            f"SQL file `{path}`: header `-- identifiers:` declares {sorted(identifiers)} but the statement has {sorted(slots)}."
        )
    return SqlFile(name, declared, header["description"], text, path, identifiers)


def _names(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.split(",") if p.strip() not in ("", "-"))


class SqlDir:
    """The `.sql` files of one package folder (read through importlib.resources, so installed copies work)."""

    def __init__(self, package: str, folder: str = "sql") -> None:
        self.package = package
        self.folder = folder

    def __repr__(self) -> str:
        return f"SqlDir({self.package!r}, {self.folder!r})"

    def path(self, name: str) -> str:
        return f"{self.package.replace('.', '/')}/{self.folder}/{name}.sql"

    def names(self) -> list[str]:
        root = resources.files(self.package).joinpath(self.folder)
        return sorted(p.name.removesuffix(".sql") for p in root.iterdir() if p.name.endswith(".sql"))

    def load(self, name: str) -> SqlFile:
        return _load(self.package, self.folder, name)

    def bind(self, name: str, params: dict[str, Any]) -> tuple[SqlFile, dict[str, Any] | None]:
        q = self.load(name)
        if set(params) != set(q.params):
            raise SqlError(f"{self.path(name)} declares params {list(q.params)}; got {sorted(params)}.")
        return q, ({k: params[k] for k in q.params} if q.params else None)

    def query(self, con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> duckdb.DuckDBPyRelation:
        """The file's query as a relation, bound to exactly the parameters its header declares."""
        q, bound = self.bind(name, params)
        return con.sql(q.sql, params=bound)

    def execute(self, con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> None:
        """Run a statement file (CREATE TABLE / INSERT / CREATE MACRO)."""
        q, bound = self.bind(name, params)
        con.execute(q.sql, bound)

    def rows(self, con: duckdb.DuckDBPyConnection, name: str, chunk: int = 65_536, **params: Any) -> Iterator[tuple]:
        """The file's rows as tuples, fetched `chunk` at a time (memory: one chunk). `con` runs
        nothing else until the rows are consumed."""
        q, bound = self.bind(name, params)
        con.execute(q.sql, bound)
        while rows := con.fetchmany(chunk):
            yield from rows

    def fetch_dicts(self, con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> list[dict[str, Any]]:
        rel = self.query(con, name, **params)
        cols = rel.columns
        return [dict(zip(cols, row, strict=True)) for row in rel.fetchall()]

    def temp_table(self, con: duckdb.DuckDBPyConnection, table: str, name: str, **params: Any) -> None:
        """`CREATE OR REPLACE TEMP TABLE <table> AS <the file's query>` (table names are ours, never input)."""
        q, bound = self.bind(name, params)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {q.body}", bound)



@contextmanager
def arrow_tables(con: duckdb.DuckDBPyConnection, **tables: Any) -> Iterator[None]:
    """Arrow tables (or batches) that SQL reads under their keyword names inside the block: DuckDB
    scans them in place, without a copy; they are unregistered however the block ends."""
    for name, table in tables.items():
        con.register(name, table)
    try:
        yield
    finally:
        for name in tables:
            con.unregister(name)


@functools.cache
def _load(package: str, folder: str, name: str) -> SqlFile:
    path = f"{package.replace('.', '/')}/{folder}/{name}.sql"
    try:
        text = resources.files(package).joinpath(folder, f"{name}.sql").read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError) as e:
        raise SqlError(f"SQL file `{path}` is missing; reinstall llm-log-audit.") from e
    return parse_sql_file(name, text, path)
