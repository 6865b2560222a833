"""Spend per request from reported usage x the dated price table, and spend totals.

Writes (into WORKDIR/audit/):
  request_costs.parquet   one row per request: price entry, priced flag, cost components (USD)
  cost_by_period.parquet  per day / week / month
  cost_by_model.parquet   per model as logged

Per-task-type spend needs the task labels, which audit.tasks writes after this module; it is
reported by audit.cache (cache_by_task_type.parquet), which also adds the ideal-caching projection.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from audit.prices import PriceTable, load_prices
from audit.tables import fetch_dicts, open_store, query, temp_table, write_query, write_table
from pipeline.config import from_section
from pipeline.workdir.store import sql_literal

DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True)
class CostConfig:
    prices: str | None = None
    """Path to a prices TOML replacing the shipped audit/prices.toml (e.g. negotiated rates)."""


def price_table(config: dict[str, Any]) -> PriceTable:
    """The price table the cost and cache audits share (`[audit.cost] prices` overrides it)."""
    cfg = from_section(CostConfig, config, "audit.cost")
    return load_prices(Path(cfg.prices) if cfg.prices else None)


def register_prices(con: duckdb.DuckDBPyConnection, prices: PriceTable) -> None:
    """Register `price_map` (every distinct model spelling in the store -> price key) and
    `price_versions` (each price entry with its validity interval) for the SQL range join.

    Model names are resolved in Python because there are only a handful of distinct spellings and
    the longest-prefix rule reads better here than in SQL; the per-request join stays in DuckDB.
    """
    pairs = con.execute("SELECT DISTINCT model, model_resolved FROM requests").fetchall()
    rows: dict[str, list[str | None]] = {"model": [], "model_resolved": [], "price_model_key": []}
    for model, resolved in pairs:
        # The resolved snapshot is what was billed; fall back to the requested name.
        price = prices.lookup(resolved) or prices.lookup(model)
        rows["model"].append(model)
        rows["model_resolved"].append(resolved)
        rows["price_model_key"].append(price.key if price else None)
    con.register("price_map_arrow", pa.table(rows, schema=pa.schema([
        ("model", pa.string()), ("model_resolved", pa.string()), ("price_model_key", pa.string()),
    ])))
    con.execute("CREATE OR REPLACE TEMP TABLE price_map AS SELECT * FROM price_map_arrow")
    versions = prices.versions()
    vt = pa.table(
        {
            "key": [m.key for m, _, _ in versions],
            "effective_from": [m.effective_from for m, _, _ in versions],
            "valid_from": [s for _, s, _ in versions],
            "valid_to": [e for _, _, e in versions],
            "input": [m.input for m, _, _ in versions],
            "cached_input": [m.cached_input for m, _, _ in versions],
            "cache_write_5m": [m.cache_write_5m for m, _, _ in versions],
            "cache_write_1h": [m.cache_write_1h for m, _, _ in versions],
            "output": [m.output for m, _, _ in versions],
            "batch_discount": [m.batch_discount for m, _, _ in versions],
            "per_tokens": [float(prices.per_tokens)] * len(versions),
        },
        schema=pa.schema([
            ("key", pa.string()), ("effective_from", pa.date32()),
            ("valid_from", pa.timestamp("us", tz="UTC")), ("valid_to", pa.timestamp("us", tz="UTC")),
            ("input", pa.float64()), ("cached_input", pa.float64()), ("cache_write_5m", pa.float64()),
            ("cache_write_1h", pa.float64()), ("output", pa.float64()), ("batch_discount", pa.float64()),
            ("per_tokens", pa.float64()),
        ]),
    )
    con.register("price_versions_arrow", vt)
    con.execute("CREATE OR REPLACE TEMP TABLE price_versions AS SELECT * FROM price_versions_arrow")


def window_days(first: datetime | None, last: datetime | None) -> float:
    """Calendar days the log covers (first to last request, both days counted)."""
    if first is None or last is None:
        return 0.0
    return float((last.date() - first.date()).days + 1)


def monthly(amount: float, days: float) -> float:
    return amount / days * DAYS_PER_MONTH if days > 0 else 0.0


def attach_request_costs(con: duckdb.DuckDBPyConnection, out_dir: Path, rollup: bool = True) -> None:
    """`request_costs` and (`rollup`) its `cost_rollup` (every spend figure, whole window and per
    model; 1.6 s at 1 M requests, so a module that needs only the window leaves it out)."""
    con.execute(
        "CREATE OR REPLACE VIEW request_costs AS SELECT * FROM read_parquet("
        f"{sql_literal(Path(out_dir) / 'request_costs.parquet')})"
    )
    if rollup:
        temp_table(con, "cost_rollup", "cost_rollup")


def run(workdir: Path, out_dir: Path, config: dict[str, Any]) -> dict[str, Any]:
    prices = price_table(config)
    con = open_store(workdir, config=config)
    try:
        register_prices(con, prices)
        write_query(con, "cost_request_costs", out_dir / "request_costs.parquet")
        attach_request_costs(con, out_dir)
        periods = [
            query(con, "cost_by_period", grain=grain).to_arrow_table() for grain in ("day", "week", "month")
        ]
        write_table(pa.concat_tables(periods), out_dir / "cost_by_period.parquet")
        write_query(con, "cost_by_model", out_dir / "cost_by_model.parquet")
        totals = fetch_dicts(con, "cost_totals")[0]
        by_model = fetch_dicts(con, "cost_by_model")
        unpriced = fetch_dicts(con, "cost_unpriced_models")
    finally:
        con.close()
    return summarize(totals, by_model, unpriced, prices)


def summarize(
    totals: dict[str, Any], by_model: list[dict[str, Any]], unpriced: list[dict[str, Any]], prices: PriceTable
) -> dict[str, Any]:
    days = window_days(totals["first_ts"], totals["last_ts"])
    spend = float(totals["cost_usd"])
    uncached = float(totals["cost_uncached_usd"])
    section: dict[str, Any] = {
        "currency": prices.currency,
        "price_table": {"version": prices.version, "path": prices.shown_path, "sha256": prices.sha256},
        "requests": totals["requests"],
        "priced_requests": totals["priced_requests"],
        "requests_without_usage": totals["requests_without_usage"],
        "requests_unpriced_model": totals["requests_unpriced_model"],
        "window": {"first_ts": totals["first_ts"], "last_ts": totals["last_ts"], "days": days},
        "total_usd": round(spend, 6),
        "components_usd": {
            "input": round(float(totals["cost_input_usd"]), 6),
            "cached_input": round(float(totals["cost_cached_input_usd"]), 6),
            "cache_write": round(float(totals["cost_cache_write_usd"]), 6),
            "output": round(float(totals["cost_output_usd"]), 6),
            "batch_discount_saved": round(float(totals["batch_discount_usd"]), 6),
        },
        "total_without_caching_usd": round(uncached, 6),
        "caching_saved_usd": round(uncached - spend, 6),
        "monthly_run_rate_usd": round(monthly(spend, days), 2),
        "monthly_run_rate_without_caching_usd": round(monthly(uncached, days), 2),
        "by_model": [
            {**{k: r[k] for k in ("model", "price_model_key", "requests", "input_tokens", "output_tokens")},
             "cost_usd": round(float(r["cost_usd"]), 6)}
            for r in by_model[:20]
        ],
        "unpriced_models": unpriced,
        "reported_cost": {
            "rows": totals["rows_with_reported_cost"],
            "reported_usd": totals["reported_cost_usd"],
            "recomputed_usd": totals["recomputed_cost_usd_same_rows"],
        },
    }
    top = by_model[0]["model"] if by_model else "-"
    note = f"; {len(unpriced)} model(s) unpriced" if unpriced else ""
    section["headline"] = (
        f"${spend:,.2f} over {days:.0f} days (run-rate ${section['monthly_run_rate_usd']:,.0f}/month; "
        f"${uncached:,.2f} without caching); top model {top}{note}"
    )
    return section
