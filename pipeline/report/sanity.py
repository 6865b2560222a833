"""Sanity bounds: figures in the logs that no real API call can have, found and shown as warnings.

A request with more tokens than any model's context window (`2**62` tokens from a broken
exporter), a timestamp outside the plausible window (epoch 86400 turned a 60-day log into a
47,483-day window) or a cost above a per-request ceiling is listed, with file and line, under
`sanity` in report.json and as warnings in report.md/html; the report's window is the trimmed one
(plausible timestamps only). The bounds are `[report] sanity_*` settings.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.report.inputs import SQL
from pipeline.report.thresholds import ReportConfig
from pipeline.workdir.versions import stage_dir

OUTLIERS_LISTED = 10


def sanity_checks(workdir: Path, cfg: ReportConfig, now: datetime | None = None) -> dict[str, Any]:
    """Outliers and the trimmed window over the store (and the cost audit when present)."""
    from pipeline.errors import StoreError
    from pipeline.workdir.store import connect_store, sql_literal

    latest = (now or datetime.now(UTC)) + timedelta(days=cfg.sanity_future_days)
    bounds = {"earliest": f"{cfg.sanity_earliest}T00:00:00+00:00", "latest": latest.isoformat()}
    try:
        con = connect_store(workdir)
    except StoreError:
        return {"warnings": [], "outliers": [], "window": None}
    try:
        costs = stage_dir(workdir, "audit") / "request_costs.parquet"
        source = (f"SELECT request_id, cost_usd FROM read_parquet({sql_literal(costs)})" if costs.is_file()
                  else "SELECT NULL::VARCHAR AS request_id, NULL::DOUBLE AS cost_usd WHERE false")
        con.execute(f"CREATE OR REPLACE VIEW request_costs AS {source}")
        rows = SQL.fetch_dicts(con, "sanity_outliers", max_tokens=cfg.sanity_max_request_tokens,
                               max_cost_usd=cfg.sanity_max_request_cost_usd, limit=OUTLIERS_LISTED, **bounds)
        window = SQL.fetch_dicts(con, "sanity_window", **bounds)[0]
    finally:
        con.close()
    totals: dict[str, int] = {}
    outliers = []
    for r in rows:
        totals[r["reason"]] = int(r["reason_total"])
        outliers.append({
            "reason": r["reason"], "request_id": r["request_id"], "ts": r["ts"].isoformat() if r["ts"] else None,
            "model": r["model"], "tokens": int(r["tokens"]), "cost_usd": r["cost_usd"],
            "source": f"{r['source_file']}:{r['source_line']}",
        })
    warnings = []
    if totals.get("tokens"):
        warnings.append(f"{totals['tokens']} request(s) report more than {cfg.sanity_max_request_tokens:,} tokens, "
                        "beyond any model's context window: their usage fields are broken, and every token and "
                        "cost figure that includes them is inflated")
    if totals.get("timestamp"):
        trimmed = _window(window["first_ts"], window["last_ts"])
        raw = _window(window["raw_first_ts"], window["raw_last_ts"])
        warnings.append(f"{totals['timestamp']} request(s) have a timestamp outside {cfg.sanity_earliest} → "
                        f"{latest.date().isoformat()}: the window shown is the trimmed {trimmed['days'] if trimmed else 0:g} "
                        f"days, not the {raw['days'] if raw else 0:g} the raw timestamps span")
    if totals.get("cost"):
        warnings.append(f"{totals['cost']} request(s) cost more than ${cfg.sanity_max_request_cost_usd:,.2f} each "
                        "(the per-request ceiling): check their token counts and prices before trusting the spend")
    trimmed_window = _window(window["first_ts"], window["last_ts"]) if totals.get("timestamp") else None
    return {"warnings": warnings, "outliers": outliers, "counts": totals, "window": trimmed_window,
            "bounds": {"max_request_tokens": cfg.sanity_max_request_tokens, "earliest": cfg.sanity_earliest,
                       "latest": latest.date().isoformat(), "max_request_cost_usd": cfg.sanity_max_request_cost_usd}}


def _window(first: datetime | None, last: datetime | None) -> dict[str, Any] | None:
    if first is None or last is None:
        return None
    return {"start": first.date().isoformat(), "end": last.date().isoformat(),
            "days": float((last.date() - first.date()).days + 1)}
