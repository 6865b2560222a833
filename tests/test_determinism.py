"""Same input -> same bytes, whatever DuckDB's thread count (issue 15, docs/architecture.md
"Deterministic figures").

DuckDB adds floating-point values in the order its threads meet them, so a plain `sum(DOUBLE)` over
more rows than one thread scans can differ in the last digits from run to run. The planted table
below is built to expose that: 300,000 requests in 25,000-row row groups (DuckDB parallelizes a
Parquet scan by row group), costs mixing 1e-3- and 1e9-scale amounts (so every order of adding them
rounds differently), two providers per model (an `any_value` picks whichever thread came first),
models tied in every task type (`mode` breaks a tie by whichever thread came first) and tied sort
keys. The audit's own SQL files run on it with 1 and 4 threads, and again with 4: every table they
write must be byte-identical, and so must the rows the summaries are built from.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from audit.tables import fetch_dicts, temp_table, write_query
from pipeline.workdir.store import sql_literal

ROWS = 300_000
ROW_GROUP = 25_000
# The audit tables the cost, traffic and cache modules write with sums, averages and orderings.
TABLES: list[tuple[str, dict[str, Any]]] = [
    ("cost_by_model", {}),
    ("cost_by_period", {"grain": "day"}),
    ("cost_by_period", {"grain": "week"}),
    ("cost_unpriced_models", {}),
    ("traffic_daily", {}),
    ("traffic_weekly", {}),
    ("traffic_latency", {}),
    ("traffic_errors", {}),
    ("cache_by_model", {}),
    ("cache_by_task_type", {}),
    ("cache_by_day", {}),
    ("cache_tokens_by_model", {}),
    ("cache_prefix_breakers", {"min_request_share": 0.0, "min_saving_share": 0.0}),
]
SUMMARIES: list[tuple[str, dict[str, Any]]] = [("cost_totals", {}), ("cache_overall", {})]


def _planted(path: Path) -> None:
    rng = np.random.default_rng(15)
    i = np.arange(ROWS)
    big = rng.random(ROWS) < 0.5

    def money() -> np.ndarray:
        return np.where(big, rng.random(ROWS) * 1e9, rng.random(ROWS) * 1e-3)

    def tokens(high: int) -> np.ndarray:
        return rng.integers(0, high, ROWS)

    start = datetime(2026, 6, 1, tzinfo=UTC).timestamp()
    ts = pa.array(((start + (i // 3) * 51) * 1e6).astype("int64"), pa.timestamp("us", tz="UTC"))  # 3 rows per instant
    model = np.array([f"model-{k}" for k in range(5)])[i % 5]
    breaker = rng.random(ROWS) < 0.3
    table = pa.table({
        "request_id": [f"r{k:07d}" for k in rng.permutation(ROWS)],
        "ts": ts,
        "model": model,
        "model_resolved": model,
        "provider": np.where(rng.random(ROWS) < 0.5, "openai", "azure"),
        "price_model_key": np.where(i % 5 == 4, None, model),
        "rules": np.where(rng.random(ROWS) < 0.5, "auto_prefix", "breakpoints"),
        # every task type sees each model equally often: `mode(model)` ties
        "task_type": np.array(["extract", "summarize", "classify", "chat"])[(i // 5) % 4],
        "priced": i % 5 != 4,
        "usage_missing": i % 97 == 0,
        "is_batch": i % 11 == 0,
        "input_tokens": tokens(200_000), "in_cache_read": tokens(50_000),
        "in_cache_write_5m": tokens(5_000), "in_cache_write_1h": tokens(5_000),
        "in_cache_write_unspecified": tokens(5_000), "out_total": tokens(8_000), "output_tokens": tokens(8_000),
        "cost_usd": money(), "cost_uncached_usd": money(), "cost_input_usd": money(),
        "cost_cached_input_usd": money(), "cost_cache_write_usd": money(), "cost_output_usd": money(),
        "batch_discount_usd": money(), "cost_reported_usd": money(),
        "cost_sim_as_logged_usd": money(), "cost_sim_ideal_bp_usd": money(), "cost_sim_ideal_usd": money(),
        "failed": i % 13 == 0, "rate_limited": i % 29 == 0, "server_error": i % 31 == 0,
        "latency_ms": rng.random(ROWS) * 1e4, "ttft_ms": rng.random(ROWS) * 1e3,
        "simulated": i % 7 != 0,
        "skip_reason": np.array(["too_short", "no_prompt", "failed_call", "unpriced"])[i % 4],
        "has_cache_fields": i % 3 != 0,
        "as_logged_read": tokens(50_000), "as_logged_write_5m": tokens(5_000), "as_logged_write_1h": tokens(5_000),
        "ideal_bp_read": tokens(60_000), "ideal_read": tokens(80_000),
        "reported_read": tokens(50_000), "reported_write": tokens(5_000),
        "tok_tools": tokens(5_000).astype("float64"), "tok_system": tokens(5_000).astype("float64"),
        "tok_history": tokens(50_000).astype("float64"), "tok_new_turn": tokens(5_000).astype("float64"),
        "prompt_incomplete": i % 17 == 0,
        "bp_source": np.where(i % 2 == 0, "explicit", "inferred"),
        "encoding": np.full(ROWS, "o200k_base"), "approximate": np.zeros(ROWS, dtype=bool),
        "est_total": tokens(200_000) + 1, "reported_input": tokens(200_000) + 1,
        "estimate_error": np.where(big, rng.random(ROWS) * 1e9, rng.random(ROWS) * 1e-3),
        "breaker_kind": np.where(breaker, np.array(["uuid", "timestamp"])[i % 2], None),
        "breaker_segment": np.where(breaker, np.array(["system", "history"])[i % 2], None),
        "breaker_offset": tokens(1_000), "breaker_stable_after": tokens(1_000),
        "breaker_example": np.array([f"span-{k}" for k in range(50)])[i % 50],
    })
    pq.write_table(table, path, row_group_size=ROW_GROUP)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("determinism") / "planted.parquet"
    _planted(path)
    return path


def _audit_outputs(planted: Path, out: Path, threads: int) -> dict[str, Any]:
    """Run the audit's SQL files on the planted table with `threads` DuckDB threads."""
    out.mkdir()
    con = duckdb.connect(config={"threads": threads})
    try:
        con.execute("SET TimeZone = 'UTC'")
        base = f"SELECT *, CAST(ts AS DATE) AS day FROM read_parquet({sql_literal(planted)})"
        for view in ("request_costs", "cache_requests"):
            con.execute(f"CREATE VIEW {view} AS {base}")
        con.execute(f"CREATE VIEW traffic_base AS SELECT *, CAST(date_trunc('week', ts) AS DATE) AS week FROM ({base})")
        temp_table(con, "cost_rollup", "cost_rollup")
        temp_table(con, "cache_rollup", "cache_rollup")
        result: dict[str, Any] = {}
        for name, params in TABLES:
            path = out / f"{name}-{'-'.join(map(str, params.values()))}.parquet"
            write_query(con, name, path, **params)
            result[path.name] = path.read_bytes()
        for name, params in SUMMARIES:
            result[name] = repr(fetch_dicts(con, name, **params))
        return result
    finally:
        con.close()


def test_audit_tables_are_byte_identical_across_duckdb_threads_and_runs(planted: Path, tmp_path: Path) -> None:
    one = _audit_outputs(planted, tmp_path / "threads1", threads=1)
    four = _audit_outputs(planted, tmp_path / "threads4", threads=4)
    again = _audit_outputs(planted, tmp_path / "threads4-again", threads=4)
    assert one.keys() == four.keys() == again.keys()
    differ = sorted(k for k in one if not one[k] == four[k] == again[k])
    assert differ == []


def test_money_sums_are_exact(planted: Path) -> None:
    """The sums are the exact sums of the per-request amounts (to 1e-18 USD), not one rounding of them."""
    cost = pq.read_table(planted, columns=["cost_usd"]).column(0).to_numpy()
    exact = sum(map(int, np.round(cost * 1e9).astype(np.int64)))  # nano-dollars: the 1e9-scale part dominates
    con = duckdb.connect(config={"threads": 4})
    try:
        con.execute(f"CREATE VIEW request_costs AS SELECT * FROM read_parquet({sql_literal(planted)})")
        temp_table(con, "cost_rollup", "cost_rollup")
        total = fetch_dicts(con, "cost_totals")[0]["cost_usd"]
    finally:
        con.close()
    assert total == pytest.approx(exact / 1e9, rel=1e-15)


def test_no_float_sum_of_money_outside_the_exact_form() -> None:
    """Every SQL sum of a `*_usd` column goes through DECIMAL(38, 18) or, for the unbounded
    `cost_reported_usd` copied from the logs, a fixed order."""
    import re

    root = Path(__file__).resolve().parent.parent
    loose = []
    for sql in sorted([*root.glob("audit/sql/*.sql"), *root.glob("pipeline/*/sql/*.sql")]):
        for call in re.findall(r"\b(?:sum|avg)\(([^()]*(?:\([^()]*\)[^()]*)*)\)", sql.read_text()):
            if "usd" in call and "DECIMAL(38, 18)" not in call and "ORDER BY request_id" not in call:
                loose.append(f"{sql.name}: {call}")
    assert loose == []
