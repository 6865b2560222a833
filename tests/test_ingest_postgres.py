"""`logaudit ingest postgresql://…`: LiteLLM's spend-log table read from a real PostgreSQL server.

The server is started by the test (tests/pg_server.py) with LiteLLM's own column names and types
(tests/cases/litellm_db/schema.sql, from schema.prisma). Rows are planted with known token counts,
including partial ones (prompts not stored, a failed call), and read back from the store.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from format_cases import assert_reconciles, buckets, read_rows
from pg_server import PASSWORD, USER, PgServer, start_server
from psycopg.types.json import Jsonb

from pipeline.cli import cli
from pipeline.errors import IngestError
from pipeline.ingest import ingest, postgres
from pipeline.ingest.writer import read_state

SCHEMA = Path(__file__).parent / "cases" / "litellm_db" / "schema.sql"
JSON_COLUMNS = {"metadata", "request_tags", "messages", "response", "proxy_server_request"}


@pytest.fixture(scope="module")
def server() -> Iterator[PgServer]:
    pg, why = start_server()
    if pg is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL source tests, but {why}")
        pytest.skip(why)
    yield pg
    pg.stop()


@pytest.fixture
def db(server: PgServer) -> Iterator[tuple[str, psycopg.Connection]]:
    """A fresh database holding LiteLLM's table; yields its name and a writer connection."""
    name = "litellm_" + uuid.uuid4().hex[:8]
    with psycopg.connect(server.url("postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    conn = psycopg.connect(server.url(name), autocommit=True)
    conn.execute(SCHEMA.read_text())
    yield name, conn
    conn.close()


def at(hhmm: str) -> datetime:
    return datetime.fromisoformat(f"2026-10-05T{hhmm}:00").replace(tzinfo=None)  # Prisma: UTC, no zone


def insert(conn: psycopg.Connection, **row: Any) -> None:
    values = {k: Jsonb(v) if k in JSON_COLUMNS else v for k, v in row.items()}
    cols = ", ".join(f'"{k}"' for k in values)
    marks = ", ".join(["%s"] * len(values))
    conn.execute(f'INSERT INTO "LiteLLM_SpendLogs" ({cols}) VALUES ({marks})', list(values.values()))


def usage(prompt: int, completion: int, read: int = 0, write: int = 0) -> dict:
    return {"usage_object": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                             "cache_read_input_tokens": read, "cache_creation_input_tokens": write,
                             "prompt_tokens_details": {"cached_tokens": read}}}


def plant_first_week(conn: psycopg.Connection) -> None:
    # A Claude call through the proxy with prompts stored: request, response and provider cache reads.
    insert(conn, request_id="chatcmpl-a1", call_type="acompletion", api_key="88e19f0c", spend=0.004127,
           prompt_tokens=12480, completion_tokens=210, total_tokens=12690, startTime=at("09:00"), endTime=at("09:00"),
           completionStartTime=at("09:00"), request_duration_ms=2843, model="claude-sonnet-4-6", model_group="sonnet",
           custom_llm_provider="anthropic", user="svc-helpdesk", end_user="cust_4411", session_id="sess_9b1",
           status="success", cache_hit="False", request_tags=["prod"], metadata=usage(12480, 210, read=11904),
           proxy_server_request={"model": "sonnet", "messages": [{"role": "user", "content": "Cancel my plan"}]},
           response={"id": "chatcmpl-a1", "object": "chat.completion", "created": 1791190800, "model": "claude-sonnet-4-6",
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": "Done: cancelled."},
                                  "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 12480, "completion_tokens": 210, "total_tokens": 12690}})
    # An OpenAI call whose prompt is in the `messages` column (no proxy_server_request), cache write too.
    insert(conn, request_id="chatcmpl-b2", call_type="acompletion", spend=0.0021, prompt_tokens=3000, completion_tokens=40,
           total_tokens=3040, startTime=at("10:00"), endTime=at("10:00"), model="gpt-5.6", custom_llm_provider="openai",
           status="success", metadata=usage(3000, 40, read=2048, write=512),
           messages=[{"role": "system", "content": "Classify the ticket."}, {"role": "user", "content": "Refund?"}],
           response={"id": "chatcmpl-b2", "object": "chat.completion", "created": 1791194400, "model": "gpt-5.6",
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": "billing"}, "finish_reason": "stop"}]})
    # Partial: prompts not stored (LiteLLM's default), tokens and spend only.
    insert(conn, request_id="c3-no-prompts", call_type="acompletion", spend=0.0005, prompt_tokens=800, completion_tokens=20,
           total_tokens=820, startTime=at("11:00"), endTime=at("11:00"), model="gpt-4.1-mini", custom_llm_provider="openai",
           status="success")
    # As LiteLLM's writer stores bodies: `json.dumps`ed strings inside the jsonb columns, and the
    # request body only in metadata.proxy_server_request (a string as well), the column left `{}`.
    insert(conn, request_id="chatcmpl-g7", call_type="acompletion", spend=0.0009, prompt_tokens=1500, completion_tokens=12,
           total_tokens=1512, startTime=at("10:30"), endTime=at("10:30"), model="gpt-4.1-mini", custom_llm_provider="openai",
           status="success",
           metadata={**usage(1500, 12, read=1024), "proxy_server_request": json.dumps(
               {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "Track order 7"}],
                "tools": [{"type": "function", "function": {"name": "track", "parameters": {"type": "object"}}}]})},
           messages=json.dumps([{"role": "user", "content": "Track order 7"}]),
           response=json.dumps({"id": "chatcmpl-g7", "object": "chat.completion", "created": 1791196200, "model": "gpt-4.1-mini",
                                "choices": [{"index": 0, "message": {"role": "assistant", "content": "In transit."},
                                             "finish_reason": "stop"}]}))
    # A failed call: LiteLLM records the provider's status and error class in metadata.
    insert(conn, request_id="d4-failed", call_type="acompletion", startTime=at("11:30"), endTime=at("11:30"),
           model="gpt-4.1-mini", custom_llm_provider="openai", status="failure",
           metadata={"error_information": {"error_code": "429", "error_class": "RateLimitError",
                                           "error_message": "Rate limit reached"}})


def test_reads_the_table_then_only_new_rows(server: PgServer, db: tuple[str, psycopg.Connection], tmp_path: Path) -> None:
    name, conn = db
    plant_first_week(conn)
    url = server.url(name)
    first = ingest([url], tmp_path, progress=False)
    assert_reconciles(first.manifest)
    assert first.totals["lines_read"] == 5 and first.totals["rows_written"] == 5
    rows = {r["request_id"]: r for r in read_rows(tmp_path)}
    # (uncached, cache read, 5m, 1h, write unspecified, output, reasoning): prompt_tokens are inclusive.
    assert buckets(rows["chatcmpl-a1"]) == (12480 - 11904, 11904, None, None, 0, 210, None)
    assert buckets(rows["chatcmpl-b2"]) == (3000 - 2048 - 512, 2048, None, None, 512, 40, None)
    assert buckets(rows["c3-no-prompts"]) == (800, None, None, None, None, 20, None)
    a1 = rows["chatcmpl-a1"]
    assert a1["source_format"] == "litellm_spend_log" and a1["model"] == "sonnet" and a1["provider"] == "anthropic"
    assert a1["messages"][-1]["content"] == "Cancel my plan" and a1["response_text"] == "Done: cancelled."
    assert a1["ts"] == datetime(2026, 10, 5, 9, 0, tzinfo=UTC) and a1["cost_reported_usd"] == pytest.approx(0.004127)
    assert rows["chatcmpl-b2"]["system_text"] == "Classify the ticket." and rows["chatcmpl-b2"]["response_text"] == "billing"
    assert rows["c3-no-prompts"]["messages"] in (None, []) and rows["c3-no-prompts"]["usage_missing"] is False
    g7 = rows["chatcmpl-g7"]  # bodies stored as JSON strings are decoded, tools from metadata's request body
    assert (g7["messages"][-1]["content"], g7["response_text"]) == ("Track order 7", "In transit.")
    assert json.loads(g7["tools_json"])[0]["name"] == "track" and buckets(g7) == (1500 - 1024, 1024, None, None, 0, 12, None)
    failed = rows["d4-failed"]
    assert (failed["finish_reason"], failed["error_type"], failed["status_code"]) == ("error", "RateLimitError", 429)
    label = f"postgresql://{server.socket_dir.replace('/', '%2F')}:5433/{name}/LiteLLM_SpendLogs"
    assert first.manifest["inputs"] == [label] and {r["source_file"] for r in rows.values()} == {label}
    assert read_state(tmp_path)["sources"][label]["watermark"] == "2026-10-05T11:30:00+00:00"

    # Nothing new: only the overlap hour before the watermark (10:30, 11:00, 11:30) is read again, as duplicates.
    second = ingest([url], tmp_path, progress=False)
    assert (second.totals["lines_read"], second.totals["rows_written"], second.totals["rows_duplicate"]) == (3, 0, 3)

    # A new row, and a late one LiteLLM committed after the watermark row although it started before it.
    insert(conn, request_id="e5-new", call_type="acompletion", spend=0.001, prompt_tokens=100, completion_tokens=5,
           total_tokens=105, startTime=at("12:00"), endTime=at("12:00"), model="gpt-4.1-mini", status="success")
    insert(conn, request_id="f6-late", call_type="acompletion", spend=0.001, prompt_tokens=90, completion_tokens=4,
           total_tokens=94, startTime=at("11:10"), endTime=at("11:10"), model="gpt-4.1-mini", status="success")
    third = ingest([url], tmp_path, progress=False)
    assert_reconciles(third.manifest)
    assert (third.totals["lines_read"], third.totals["rows_written"], third.totals["rows_duplicate"]) == (5, 2, 3)
    rows = {r["request_id"]: r for r in read_rows(tmp_path)}
    assert sorted(rows) == ["c3-no-prompts", "chatcmpl-a1", "chatcmpl-b2", "chatcmpl-g7", "d4-failed", "e5-new", "f6-late"]
    assert buckets(rows["f6-late"])[0::5] == (90, 4)
    assert read_state(tmp_path)["sources"][label]["watermark"] == "2026-10-05T12:00:00+00:00"


def test_rows_arrive_in_pages_in_start_time_order(server: PgServer, db: tuple[str, psycopg.Connection]) -> None:
    name, conn = db
    for i in range(7):
        insert(conn, request_id=f"r{i}", call_type="acompletion", startTime=at(f"0{9 - i % 3}:1{i}"), endTime=at("09:00"))
    progress = postgres.ReadProgress()
    got = list(postgres.read_rows(postgres.DatabaseSource.parse(server.url(name)), None, progress, page_rows=2))
    starts = [r["startTime"] for r in got]
    assert len(got) == 7 and starts == sorted(starts) and progress.rows == 7
    assert progress.watermark == datetime(2026, 10, 5, 9, 16, tzinfo=UTC)
    since = datetime(2026, 10, 5, 8, 14, tzinfo=UTC)  # r4 starts exactly then (kept); r1 at 08:11 is before
    later = list(postgres.read_rows(postgres.DatabaseSource.parse(server.url(name)), since, postgres.ReadProgress()))
    assert sorted(r["request_id"] for r in later) == ["r0", "r3", "r4", "r6"]


def test_the_connection_is_read_only(server: PgServer, db: tuple[str, psycopg.Connection]) -> None:
    name, _ = db
    conn = postgres.connect(postgres.DatabaseSource.parse(server.url(name)))
    try:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute('DELETE FROM "LiteLLM_SpendLogs"')
    finally:
        conn.close()


def test_credentials_never_reach_any_output(server: PgServer, db: tuple[str, psycopg.Connection], tmp_path: Path) -> None:
    name, conn = db
    plant_first_week(conn)
    result = CliRunner().invoke(cli, ["ingest", server.url(name), "--out", str(tmp_path / "out")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "rows:    5 written" in result.output
    assert PASSWORD not in result.output and USER not in result.output
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert any(p.name == "state.json" for p in written) and any(p.suffix == ".parquet" for p in written)
    for p in written:
        data = p.read_bytes()
        assert PASSWORD.encode() not in data and f"{USER}:".encode() not in data, p

    wrong = CliRunner().invoke(cli, ["ingest", server.url(name, password="WRONG-pw-123"), "--out", str(tmp_path / "x")])
    assert wrong.exit_code == 1
    assert wrong.output.startswith("Error: Cannot connect to `postgresql://") and "WRONG-pw-123" not in wrong.output


def test_credentials_from_the_pg_environment(server: PgServer, db: tuple[str, psycopg.Connection], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    name, conn = db
    plant_first_week(conn)
    for key, value in {"PGHOST": server.socket_dir, "PGPORT": "5433", "PGUSER": USER, "PGPASSWORD": PASSWORD,
                       "PGDATABASE": name}.items():
        monkeypatch.setenv(key, value)
    result = ingest(["postgresql://"], tmp_path, progress=False)
    assert result.totals["rows_written"] == 5
    assert result.manifest["inputs"] == [f"postgresql://{server.socket_dir.replace('/', '%2F')}:5433/{name}/LiteLLM_SpendLogs"]


def test_a_database_without_the_table_is_a_clear_error(server: PgServer, db: tuple[str, psycopg.Connection],
                                                       tmp_path: Path) -> None:
    name, _ = db
    with pytest.raises(IngestError, match=r"No table `spend` in `postgresql://.*`: is this LiteLLM's database\?"):
        ingest([server.url(name, table="spend")], tmp_path, progress=False)
    # Without user info in the URL (`postgresql:///db?host=…`), our own `table=` option is still taken out.
    bare = f"postgresql:///{name}?host={server.socket_dir}&port=5433&user={USER}&password={PASSWORD}&table=LiteLLM_SpendLogs"
    assert ingest([bare], tmp_path / "bare", progress=False).totals["lines_read"] == 0
