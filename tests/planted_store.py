"""Write tiny normalized stores directly (no ingest) for the cost / cache / traffic unit tests."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from schemas import PARTITION_COLUMN, REQUEST_SCHEMA


def row(**kw: Any) -> dict[str, Any]:
    """A store row: every column present, usage reported unless `usage_missing=True` is passed."""
    r: dict[str, Any] = dict.fromkeys(REQUEST_SCHEMA.names)
    r["usage_missing"] = False
    r.update(kw)
    return r


def msg(role: str, content: str) -> dict[str, Any]:
    return {"role": role, "content": content, "parts_json": None, "tool_calls": None, "tool_call_id": None,
            "name": None}


def write_store(workdir: Path, rows: list[dict[str, Any]]) -> None:
    """Rows as hive-partitioned Parquet under workdir/requests/date=*/ (what connect_store reads)."""
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_day[r["ts"].strftime("%Y-%m-%d") if r["ts"] else "undated"].append(r)
    for day, day_rows in by_day.items():
        d = Path(workdir) / "requests" / f"{PARTITION_COLUMN}={day}"
        d.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(day_rows, schema=REQUEST_SCHEMA), d / "part-0.parquet")
