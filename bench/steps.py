"""Benchmark steps, each a function run in its own process by bench.measure.run_child.

Every step returns a dict with `records`/`bytes` where meaningful plus `self_usage()` figures.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from bench.measure import self_usage


def log_files(logs: str) -> list[Path]:
    from pipeline.ingest.reader import discover

    files, _ = discover([logs])
    return files


def step_ingest(logs: str, workdir: str) -> dict[str, Any]:
    from pipeline.ingest import ingest

    shutil.rmtree(workdir, ignore_errors=True)
    result = ingest([logs], Path(workdir), progress=False)
    t = result.totals
    return {
        "records": t["lines_read"],
        "bytes": sum(f.stat().st_size for f in log_files(logs)),
        "rows_written": t["rows_written"],
        "rejected": t["rejected"],
        **self_usage(),
    }


def step_duckdb_read_json(logs: str) -> dict[str, Any]:
    """The floor: DuckDB's own scan of the same JSONL files (all columns materialized)."""
    import duckdb

    files = [str(f) for f in log_files(logs) if ".jsonl" in f.name or ".ndjson" in f.name]
    con = duckdb.connect()
    n = con.execute(
        "SELECT count(*) FROM (SELECT * FROM read_json(?, format = 'newline_delimited', union_by_name = true,"
        " ignore_errors = true, maximum_object_size = 268435456))",
        [files],
    ).fetchone()[0]
    return {"records": n, "bytes": sum(Path(f).stat().st_size for f in files), **self_usage()}


def step_polars_ndjson(logs: str) -> dict[str, Any]:
    """A peer: polars' NDJSON reader over the same files (rows as JSON text, no schema inference)."""
    import polars as pl

    files = [f for f in log_files(logs) if ".jsonl" in f.name or ".ndjson" in f.name]
    n = 0
    t0 = time.perf_counter()
    for f in files:
        df = pl.read_csv(f, has_header=False, separator="\x01", quote_char=None, new_columns=["line"])
        n += df.select(pl.col("line").str.json_path_match("$.id").count()).item()
    return {"records": n, "bytes": sum(f.stat().st_size for f in files), "wall_inner_s": time.perf_counter() - t0, **self_usage()}
