"""LiteLLM's Postgres database as an ingest source: `logaudit ingest postgresql://…`.

LiteLLM's proxy keeps every call in `"LiteLLM_SpendLogs"` (schema.prisma: `request_id` text key,
`startTime`/`endTime` `timestamp(3)` in UTC, `spend` double, token counts, `metadata`/`messages`/
`response`/`proxy_server_request` jsonb). The table is read directly:

* read-only: the session is `default_transaction_read_only` and the read runs in one READ ONLY
  transaction (a consistent snapshot), streamed through a server-side cursor in pages;
* incremental: the store keeps, per source, the latest `startTime` read (the watermark); the next
  run reads from the watermark minus `OVERLAP` (LiteLLM writes spend logs in batches, so a row can
  land after a later one), and rows read twice are recognized by the store as already present;
* credentials come from the URL or libpq's `PG*` environment variables (`PGHOST`, `PGUSER`,
  `PGPASSWORD`, `PGPASSFILE`, …) and are never written anywhere: sources are named by a label
  built from host, port, database and table only, and connection errors are scrubbed.

Each row becomes a record like a line of a SpendLogs JSON export (timestamps as ISO-8601 UTC),
read by the `litellm_spend_log` format. Query options the URL may carry: `table=` (default
`LiteLLM_SpendLogs`) and `schema=`; all other parameters go to libpq.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import orjson

from pipeline.errors import IngestError
from pipeline.sql import SqlDir

SCHEMES = ("postgresql://", "postgres://")
DEFAULT_TABLE = "LiteLLM_SpendLogs"
OVERLAP = timedelta(hours=1)
PAGE_ROWS = 2000
_OWN_PARAMS = ("table", "schema")
# Postgres dialect (psycopg `%(since)s`, `{table}` composed as an identifier), loaded by the one runner.
SQL_FILE = SqlDir("pipeline.ingest").load("litellm_spend_logs_since")


SOURCE_DESCRIPTION = (
    "LiteLLM proxy database: `postgresql://[user[:password]@]host[:port]/db[?table=LiteLLM_SpendLogs&schema=…]` "
    "(or PG* variables); rows of `LiteLLM_SpendLogs` read-only, in pages, incrementally by `startTime` "
    f"(watermark per source, re-reading the last {int(OVERLAP.total_seconds() // 60)} min), each read as a `litellm_spend_log` record"
)


def is_database_url(spec: object) -> bool:
    return isinstance(spec, str) and spec.lower().startswith(SCHEMES)


@dataclass
class DatabaseSource:
    """One table to read; `conninfo` may hold credentials and must never be printed or stored."""

    conninfo: str = field(repr=False)
    table: str
    schema: str | None
    label: str

    @classmethod
    def parse(cls, url: str) -> DatabaseSource:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        own = {k: v for k, v in query if k in _OWN_PARAMS}
        rest = [(k, v) for k, v in query if k not in _OWN_PARAMS]
        conninfo = url if not own else f"{parts.scheme}://{parts.netloc}{parts.path}" + (f"?{urlencode(rest)}" if rest else "")
        if not (parts.netloc or parts.path.strip("/") or rest):
            conninfo = ""  # a bare `postgresql://`: everything from the PG* environment
        table, schema = own.get("table") or DEFAULT_TABLE, own.get("schema") or None
        return cls(conninfo, table, schema, _label(parts, dict(rest), table, schema))


def _label(parts: Any, params: dict[str, str], table: str, schema: str | None) -> str:
    """`postgresql://host:port/dbname/schema.table` from the URL or the PG* environment; no user, no password."""
    host = params.get("host") or parts.hostname or os.environ.get("PGHOST") or "localhost"
    try:
        port = params.get("port") or parts.port or os.environ.get("PGPORT") or 5432
    except ValueError:
        port = "?"
    dbname = params.get("dbname") or parts.path.lstrip("/") or os.environ.get("PGDATABASE") or "(default)"
    qualified = f"{schema}.{table}" if schema else table
    return f"postgresql://{quote(str(host), safe='')}:{port}/{quote(dbname, safe='')}/{qualified}"


def _scrub(message: str, source: DatabaseSource) -> str:
    """Connection errors can quote the connection string; keep secrets out of every message."""
    parts = urlsplit(source.conninfo)
    secrets = [s for s in (parts.password, os.environ.get("PGPASSWORD"), source.conninfo) if s]
    for key, value in parse_qsl(parts.query):
        if "pass" in key.lower() or "key" in key.lower():
            secrets.append(value)
    for s in sorted(secrets, key=len, reverse=True):
        message = message.replace(s, "***")
    return " ".join(message.split())


def connect(source: DatabaseSource) -> Any:
    """A read-only psycopg connection (UTC session) to the source's database."""
    import psycopg

    try:
        conn = psycopg.connect(source.conninfo, options="-c default_transaction_read_only=on", connect_timeout=15)
    except psycopg.Error as e:
        raise IngestError(f"Cannot connect to `{source.label}`: {_scrub(str(e), source)}") from None
    conn.read_only = True
    with conn.transaction():
        conn.execute("SET TIME ZONE 'UTC'")
    return conn


@dataclass
class ReadProgress:
    """What a read saw, for the watermark: the largest `startTime` and how many rows."""

    watermark: datetime | None = None
    rows: int = 0


def read_rows(source: DatabaseSource, since: datetime | None, progress: ReadProgress,
              page_rows: int = PAGE_ROWS) -> Iterator[dict[str, Any]]:
    """Every row with `startTime` >= `since`, as JSON-ready dicts, streamed page by page."""
    import psycopg
    from psycopg import sql

    name = sql.Identifier(source.schema, source.table) if source.schema else sql.Identifier(source.table)
    query = sql.SQL(SQL_FILE.body).format(table=name)
    conn = connect(source)
    try:
        with conn.transaction(), conn.cursor(name="logaudit_spend_logs") as cur:
            cur.itersize = page_rows
            try:
                cur.execute(query, {"since": since})
            except psycopg.errors.UndefinedTable:
                raise IngestError(
                    f"No table `{source.table}` in `{source.label}`: is this LiteLLM's database? "
                    "Name another table with `?table=` (and `&schema=`)."
                ) from None
            columns: list[str] = []
            at = -1
            for values in cur:
                if not columns:
                    columns = [c.name for c in cur.description or []]
                    at = columns.index("startTime")
                record = litellm_record({c: _json_ready(v) for c, v in zip(columns, values, strict=True)})
                start = _utc(values[at])
                if start is not None and (progress.watermark is None or start > progress.watermark):
                    progress.watermark = start
                progress.rows += 1
                yield record
    except psycopg.errors.UndefinedColumn as e:
        raise IngestError(f"`{source.label}` lacks LiteLLM's `startTime`/`request_id` columns: "
                          f"{_scrub(str(e), source)}") from None
    except psycopg.OperationalError as e:
        raise IngestError(f"Reading `{source.label}` failed: {_scrub(str(e), source)}") from None
    finally:
        conn.close()


_JSON_COLUMNS = ("metadata", "messages", "response", "proxy_server_request", "request_tags")


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def litellm_record(row: dict[str, Any]) -> dict[str, Any]:
    """A spend-log row as LiteLLM meant it. Its writer `json.dumps` the bodies before storing them,
    so a jsonb column often holds a JSON *string* (`"[{\"role\": …}]"`) rather than the array;
    newer proxies put the request body into `metadata.proxy_server_request` (a string too) and leave
    the column `{}`. Both are decoded here, so prompts stored by LiteLLM are never lost."""
    for column in _JSON_COLUMNS:
        if column in row:
            row[column] = _maybe_json(row[column])
    meta = row.get("metadata")
    if isinstance(meta, dict) and "proxy_server_request" in meta:
        meta["proxy_server_request"] = inner = _maybe_json(meta["proxy_server_request"])
        if isinstance(inner, dict) and inner and not row.get("proxy_server_request"):
            row["proxy_server_request"] = inner
    return row


def _utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    # Prisma's DateTime is `timestamp(3)` without a zone, holding UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _json_ready(value: Any) -> Any:
    if isinstance(value, datetime):
        return _utc(value).isoformat()  # type: ignore[union-attr]
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, memoryview | bytes):
        return bytes(value).decode("utf-8", "replace")
    return value


def since_for(state: dict[str, Any], label: str) -> datetime | None:
    """Where the next read of `label` starts: its stored watermark minus the overlap."""
    mark = ((state.get("sources") or {}).get(label) or {}).get("watermark")
    if not mark:
        return None
    return datetime.fromisoformat(mark) - OVERLAP


def remember(state: dict[str, Any], label: str, progress: ReadProgress, run_id: str) -> None:
    entry = state.setdefault("sources", {}).setdefault(label, {})
    if progress.watermark is not None:
        old = entry.get("watermark")
        if old is None or progress.watermark > datetime.fromisoformat(old):
            entry["watermark"] = progress.watermark.isoformat()
    entry["last_run_id"] = run_id
    entry["rows_last_read"] = progress.rows
