"""Helpers for the format tests: ingest one folder of hand-written cases (tests/cases/<name>/)
into a temporary store and read back its rows and rejects."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from pipeline.ingest import ingest

CASES = Path(__file__).parent / "cases"


@dataclass
class Ingested:
    workdir: Path
    manifest: dict[str, Any]
    rows: list[dict[str, Any]]
    rejects: list[dict[str, Any]]

    def by_id(self, request_id: str) -> dict[str, Any]:
        found = [r for r in self.rows if r["request_id"] == request_id]
        assert len(found) == 1, f"{len(found)} rows with request_id {request_id!r}"
        return found[0]

    def where(self, **equal: Any) -> list[dict[str, Any]]:
        return [r for r in self.rows if all(r.get(k) == v for k, v in equal.items())]

    def one(self, **equal: Any) -> dict[str, Any]:
        found = self.where(**equal)
        assert len(found) == 1, f"{len(found)} rows with {equal}"
        return found[0]


def read_rows(workdir: Path) -> list[dict[str, Any]]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    rel = con.sql(
        f"SELECT * FROM read_parquet('{workdir}/requests/*/*.parquet', hive_partitioning = true, union_by_name = true) "
        "ORDER BY source_file, source_line, request_id"
    )
    return [dict(zip(rel.columns, t, strict=True)) for t in rel.fetchall()]


def ingest_case(name: str | Path, workdir: Path) -> Ingested:
    src = Path(name) if Path(name).is_absolute() else CASES / name
    result = ingest([src], workdir, progress=False)
    rejects = [json.loads(line) for f in sorted((workdir / "rejects").glob("*.jsonl")) for line in f.read_text().splitlines()]
    return Ingested(workdir, result.manifest, read_rows(workdir), rejects)


def buckets(row: dict[str, Any]) -> tuple:
    """(uncached, cache read, write 5m, write 1h, write unspecified, output, reasoning)."""
    return tuple(row[k] for k in ("in_uncached", "in_cache_read", "in_cache_write_5m", "in_cache_write_1h",
                                  "in_cache_write_unspecified", "out_total", "out_reasoning"))


def assert_reconciles(manifest: dict[str, Any]) -> None:
    for f in manifest["files"]:
        assert f["lines_read"] == f["blank"] + f["ingested"] + f["skipped"] + f["rejected"], f
        assert f["rows_emitted"] == f["rows_written"] + f["rows_duplicate"], f
