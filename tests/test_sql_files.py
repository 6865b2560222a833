"""Every `.sql` file of the project goes through the one runner (pipeline/sql.py) and its header holds."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from pipeline.errors import SqlError
from pipeline.sql import SqlDir, parse_sql_file

ROOT = Path(__file__).resolve().parent.parent
CODE_DIRS = ("audit", "bench", "pipeline", "schemas")
SQL_FILES = sorted(p.relative_to(ROOT) for d in CODE_DIRS for p in (ROOT / d).rglob("*.sql"))


def test_the_sql_folders_are_the_ones_we_know() -> None:
    """A new `sql/` folder must be listed here (and get a SqlDir next to the code that runs it)."""
    assert {str(p.parent) for p in SQL_FILES} == {
        "audit/sql", "bench/sql", "pipeline/dataset/sql", "pipeline/ingest/sql", "pipeline/report/sql",
        "pipeline/workdir/sql",
    }


@pytest.mark.parametrize("rel", [str(p) for p in SQL_FILES])
def test_every_sql_file_loads_through_the_runner(rel: str) -> None:
    """Name = stem, description present, declared params = the `$params` the statement uses."""
    path = Path(rel)
    package = ".".join(path.parent.parent.parts)
    q = SqlDir(package).load(path.stem)
    assert q.name == path.stem and q.description
    used = {a or b for a, b in re.findall(r"\$([a-z_][a-z0-9_]*)|%\(([a-z_][a-z0-9_]*)\)s", q.body)}
    assert used == set(q.params), rel
    assert set(re.findall(r"\{([a-z_][a-z0-9_]*)\}", q.body)) == set(q.identifiers), rel


def test_no_module_reads_sql_files_itself() -> None:
    """Only pipeline/sql.py opens `.sql` files: no loader of its own in any stage."""
    offenders = []
    for d in CODE_DIRS:
        for py in (ROOT / d).rglob("*.py"):
            if py.name == "sql.py" and py.parent.name == "pipeline":
                continue
            text = py.read_text(encoding="utf-8")
            if re.search(r"""\.sql["']\)?\s*\)?\.read_text|with_name\(["']sql["']\)|joinpath\(["']sql["']""", text):
                offenders.append(str(py.relative_to(ROOT)))
    assert offenders == []


def test_header_errors_are_sql_errors() -> None:
    ok = "-- name: q\n-- params: n\n-- description: one row.\nSELECT $n AS n\n"
    assert parse_sql_file("q", ok, "x/q.sql").params == ("n",)
    with pytest.raises(SqlError, match="`-- name:` must be 'q'"):
        parse_sql_file("q", ok.replace("name: q", "name: other"), "x/q.sql")
    with pytest.raises(SqlError, match="declares \\['n'\\] but the statement uses \\['m', 'n'\\]"):
        parse_sql_file("q", ok.replace("$n AS n", "$n AS n, $m AS m"), "x/q.sql")
    with pytest.raises(SqlError, match="declares \\[\\] but the statement uses \\['n'\\]"):
        parse_sql_file("q", ok.replace("-- params: n", "-- params: -"), "x/q.sql")
    with pytest.raises(SqlError, match="`-- identifiers:` declares \\[\\] but the statement has \\['table'\\]"):
        parse_sql_file("q", ok.replace("AS n", "AS n FROM {table}"), "x/q.sql")
    psycopg = "-- name: q\n-- params: since\n-- identifiers: table\n-- description: d.\nSELECT * FROM {table} WHERE t > %(since)s\n"
    assert parse_sql_file("q", psycopg, "x/q.sql").identifiers == ("table",)
    with pytest.raises(SqlError, match="`-- params:` declares \\['since'\\] but the statement uses \\[\\]"):
        parse_sql_file("q", psycopg.replace("%(since)s", "now()"), "x/q.sql")
    with pytest.raises(SqlError, match="description"):
        parse_sql_file("q", ok.replace("-- description: one row.\n", ""), "x/q.sql")


def test_run_binds_exactly_the_declared_params() -> None:
    sql = SqlDir("audit")
    con = duckdb.connect()
    con.execute("CREATE TABLE requests AS SELECT 'r1' AS request_id, 'hello' AS system_text")
    with pytest.raises(SqlError, match="declares params \\['limit'\\]; got \\[\\]"):
        sql.query(con, "tokens_prompts")
    with pytest.raises(SqlError, match="declares params \\['limit'\\]; got \\['limit', 'other'\\]"):
        sql.query(con, "tokens_prompts", limit=1, other=2)
    with pytest.raises(SqlError, match="audit/sql/no_such_file.sql` is missing"):
        sql.load("no_such_file")


@pytest.mark.parametrize(
    ("finish_reason", "error_type", "status_code", "error_message", "expected"),
    [
        (None, None, None, None, (False, True, False, False)),  # no finish reason logged: still a success
        ("stop", None, 200, None, (False, True, False, False)),
        ("error", None, None, None, (True, False, False, False)),  # an error finish without a status
        (None, "invalid_request_error", 400, "bad", (True, False, False, False)),
        (None, None, 399, None, (False, True, False, False)),  # just below the HTTP error range
        (None, None, 429, None, (True, False, True, False)),
        (None, "rate_limit_exceeded", None, None, (True, False, True, False)),
        (None, "api_error", None, "Too Many Requests, slow down", (True, False, True, False)),
        (None, None, 499, None, (True, False, False, False)),  # just below the server range
        (None, None, 500, None, (True, False, False, True)),
        (None, "overloaded_error", 529, None, (True, False, False, True)),
    ],
)
def test_one_definition_of_a_request_outcome(finish_reason: str | None, error_type: str | None,
                                             status_code: int | None, error_message: str | None,
                                             expected: tuple[bool, bool, bool, bool]) -> None:
    """The macros every store connection gets (pipeline/workdir/sql/request_outcome.sql) are never NULL."""
    con = duckdb.connect()
    SqlDir("pipeline.workdir").execute(con, "request_outcome")
    got = con.execute(
        "SELECT request_failed($f, $e, $s), request_succeeded($f, $e, $s), request_rate_limited($s, $e, $m), "
        "request_server_error($s, $e)",
        {"f": finish_reason, "e": error_type, "s": status_code, "m": error_message},
    ).fetchone()
    assert got == expected
