"""Latency and time to first token, failures and rate limiting, weekly volume and spend with a
fitted growth rate and a 6-month projection.

Writes (into WORKDIR/audit/):
  traffic_latency.parquet   p50/p90/p99 latency and TTFT overall, per model, per task type
  traffic_errors.parquet    failed / rate-limited (429) / server-error counts and shares
  traffic_weekly.parquet    weekly requests, failures, tokens, spend
  traffic_daily.parquet     daily requests and spend (the input of the growth fit)

Batch calls are excluded from latency (they are asynchronous). Failed calls are excluded from the
latency percentiles, which describe the model's speed, and reported as rates; the summary also
gives the percentiles with failed calls included.

Growth: daily counts are fitted with a log-linear model, log E[requests on day t] = a + b t +
day-of-week effects, by quasi-Poisson regression (IRLS; the dispersion is estimated from the
Pearson residuals, because sessions make traffic burstier than Poisson). The weekly growth rate is
exp(7b) - 1 with a 95% interval; the 6-month projection compounds it over 26 weeks. Batch
traffic is left out of the fit (a batch job lands as one bulk spike that would swamp the trend)
and added to the projections at its average monthly volume. Day-of-week
terms keep weekends from biasing the slope when the window does not hold whole weeks. The first
and last day are left out of the fit when the window is long enough, as exports usually cut them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from audit.tables import attach_labels, fetch_dicts, open_store, query, temp_table, write_query
from pipeline.config import from_section

WEEKS_AHEAD = 26
DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True)
class TrafficConfig:
    min_fit_days: int = 14
    """Fewer calendar days than this: no growth rate is fitted (too little signal)."""
    trim_edge_days_from: int = 21
    """From this many days on, the first and last day (usually partial) are left out of the fit."""


@dataclass(frozen=True)
class GrowthFit:
    weekly_rate: float
    weekly_rate_ci95: tuple[float, float]
    days_used: int
    dispersion: float
    level_last_week: float  # fitted volume of the last 7 days of the window

    @property
    def six_month_factor(self) -> float:
        return (1 + self.weekly_rate) ** WEEKS_AHEAD

    @property
    def monthly_rate(self) -> float:
        return (1 + self.weekly_rate) ** (DAYS_PER_MONTH / 7) - 1


def fit_growth(days: list[date], values: list[float], *, trim_edges: bool = False) -> GrowthFit | None:
    """Quasi-Poisson log-linear trend with day-of-week effects over consecutive calendar days.

    Days missing from `days` count as zero. Returns None when there is too little data to fit.
    """
    if not days:
        return None
    by_day = dict(zip(days, values, strict=True))
    start, end = min(days), max(days)
    if trim_edges and (end - start).days >= 2:
        start, end = start + timedelta(days=1), end - timedelta(days=1)
    n = (end - start).days + 1
    all_days = [start + timedelta(days=i) for i in range(n)]
    y = np.array([float(by_day.get(d, 0.0)) for d in all_days])
    if n < 8 or y.sum() <= 0:
        return None
    t = np.arange(n, dtype=float)
    dows = sorted({d.weekday() for d in all_days})
    cols = [np.ones(n), t - t.mean()]
    for dow in dows[1:]:
        cols.append(np.array([1.0 if d.weekday() == dow else 0.0 for d in all_days]))
    x = np.column_stack(cols)
    beta = np.linalg.lstsq(x, np.log(y + 0.5), rcond=None)[0]
    for _ in range(50):
        eta = np.clip(x @ beta, -30, 30)
        mu = np.exp(eta)
        z = eta + (y - mu) / mu
        xtw = x.T * mu
        new = np.linalg.solve(xtw @ x, xtw @ z)
        if np.max(np.abs(new - beta)) < 1e-10:
            beta = new
            break
        beta = new
    mu = np.exp(np.clip(x @ beta, -30, 30))
    p = x.shape[1]
    dispersion = float(np.sum((y - mu) ** 2 / mu) / max(n - p, 1))
    cov = max(dispersion, 1e-12) * np.linalg.inv((x.T * mu) @ x)
    b, se = float(beta[1]), math.sqrt(max(float(cov[1, 1]), 0.0))
    return GrowthFit(
        weekly_rate=math.exp(7 * b) - 1,
        weekly_rate_ci95=(math.exp(7 * (b - 1.96 * se)) - 1, math.exp(7 * (b + 1.96 * se)) - 1),
        days_used=n,
        dispersion=dispersion,
        level_last_week=float(mu[-7:].sum() * 7 / min(7, n)),
    )


def run(workdir: Path, out_dir: Path, config: dict[str, Any]) -> dict[str, Any]:
    cfg = from_section(TrafficConfig, config, "audit.traffic")
    if not (out_dir / "request_costs.parquet").is_file():
        from audit import cost

        cost.run(workdir, out_dir, config)
    from audit.cost import attach_request_costs

    con = open_store(workdir, config=config)
    try:
        attach_request_costs(con, out_dir, rollup=False)
        labeled = attach_labels(con, out_dir)
        # Built once: every traffic query reads it (a view re-ran the store scan and both joins per query).
        temp_table(con, "traffic_base", "traffic_base")
        for name in ("traffic_latency", "traffic_errors", "traffic_weekly", "traffic_daily"):
            write_query(con, name, out_dir / f"{name}.parquet")
        latency = fetch_dicts(con, "traffic_latency")
        latency_all = fetch_dicts(con, "traffic_latency_all")[0]
        errors = fetch_dicts(con, "traffic_errors")
        weekly = fetch_dicts(con, "traffic_weekly")
        daily = query(con, "traffic_daily").fetchall()
    finally:
        con.close()
    return summarize(cfg, latency, latency_all, errors, weekly, daily, labeled)


def _r(x: Any, nd: int = 1) -> Any:
    return round(float(x), nd) if x is not None else None


def summarize(
    cfg: TrafficConfig, latency: list[dict[str, Any]], latency_all: dict[str, Any], errors: list[dict[str, Any]],
    weekly: list[dict[str, Any]], daily: list[tuple[date, int, int, float, float]], labeled: bool,
) -> dict[str, Any]:
    def lat(row: dict[str, Any] | None) -> dict[str, Any]:
        row = row or {}
        return {
            "n": row.get("n_latency", 0),
            "p50_ms": _r(row.get("latency_p50_ms")), "p90_ms": _r(row.get("latency_p90_ms")),
            "p99_ms": _r(row.get("latency_p99_ms")),
            "ttft_n": row.get("n_ttft", 0),
            "ttft_p50_ms": _r(row.get("ttft_p50_ms")), "ttft_p90_ms": _r(row.get("ttft_p90_ms")),
            "ttft_p99_ms": _r(row.get("ttft_p99_ms")),
        }

    overall_lat = next((r for r in latency if r["dimension"] == "overall"), None)
    overall_err = next((r for r in errors if r["dimension"] == "overall"), None) or {}
    days = [row[0] for row in daily]
    span = (max(days) - min(days)).days + 1 if days else 0
    growth: dict[str, Any] = {
        "method": "quasi-Poisson log-linear fit of daily synchronous requests with day-of-week effects",
    }
    fit = spend_fit = None
    if span >= cfg.min_fit_days:
        trim = span >= cfg.trim_edge_days_from
        fit = fit_growth(days, [float(row[1]) for row in daily], trim_edges=trim)
        spend_fit = fit_growth(days, [float(row[3]) for row in daily], trim_edges=trim)
    batch_per_month = sum(float(row[2]) for row in daily) / span * DAYS_PER_MONTH if span else 0.0
    batch_spend_per_month = sum(float(row[4]) for row in daily) / span * DAYS_PER_MONTH if span else 0.0
    if fit is None:
        growth["weekly_growth_rate"] = None
        growth["note"] = f"needs at least {cfg.min_fit_days} days of timestamped traffic; the log covers {span}"
    else:
        growth.update({
            "weekly_growth_rate": round(fit.weekly_rate, 4),
            "weekly_growth_rate_ci95": [round(fit.weekly_rate_ci95[0], 4), round(fit.weekly_rate_ci95[1], 4)],
            "monthly_growth_rate": round(fit.monthly_rate, 4),
            "projected_6_month_factor": round(fit.six_month_factor, 3),
            "requests_per_month_now": round(fit.level_last_week / 7 * DAYS_PER_MONTH + batch_per_month, 1),
            "requests_per_month_in_6_months": round(
                fit.level_last_week / 7 * DAYS_PER_MONTH * fit.six_month_factor + batch_per_month, 1),
            "batch_requests_per_month": round(batch_per_month, 1),
            "days_used": fit.days_used,
            "dispersion": round(fit.dispersion, 2),
        })
        if spend_fit is not None:
            growth.update({
                "spend_weekly_growth_rate": round(spend_fit.weekly_rate, 4),
                "spend_per_month_now_usd": round(spend_fit.level_last_week / 7 * DAYS_PER_MONTH
                                                 + batch_spend_per_month, 2),
                "spend_per_month_in_6_months_usd": round(
                    spend_fit.level_last_week / 7 * DAYS_PER_MONTH * spend_fit.six_month_factor
                    + batch_spend_per_month, 2),
            })
    section: dict[str, Any] = {
        "latency": lat(overall_lat),
        "latency_including_failed": {
            "n": latency_all["n_latency"], "p50_ms": _r(latency_all["latency_p50_ms"]),
            "p90_ms": _r(latency_all["latency_p90_ms"]), "p99_ms": _r(latency_all["latency_p99_ms"]),
        },
        "latency_by_model": {r["key"]: lat(r) for r in latency if r["dimension"] == "model"},
        "latency_by_task_type": {r["key"]: lat(r) for r in latency if r["dimension"] == "task_type"},
        "errors": {
            "requests": overall_err.get("requests", 0),
            "failed": overall_err.get("failed", 0),
            "failed_share": _r(overall_err.get("failed_share"), 4),
            "rate_limited": overall_err.get("rate_limited", 0),
            "rate_limited_share": _r(overall_err.get("rate_limited_share"), 4),
            "server_errors": overall_err.get("server_errors", 0),
            "by_model": {r["key"]: {k: r[k] for k in ("requests", "failed", "rate_limited", "server_errors")}
                         for r in errors if r["dimension"] == "model"},
        },
        "growth": growth,
        "weekly": [
            {"week_start": w["week_start"].isoformat(), "days_logged": w["days_logged"], "requests": w["requests"],
             "failed": w["failed"], "cost_usd": round(float(w["cost_usd"]), 6)}
            for w in weekly
        ],
        "task_labels": "audit.tasks request_labels.parquet" if labeled else "none (task_type = unlabeled)",
    }
    lt = section["latency"]
    e = section["errors"]
    g = growth.get("weekly_growth_rate")
    growth_text = (
        f"volume {100 * g:+.1f}%/week (x{growth['projected_6_month_factor']:.2f} in 6 months)"
        if g is not None else "growth: too few days to fit"
    )
    speed = (f"latency p50 {lt['p50_ms']:.0f} ms / p90 {lt['p90_ms']:.0f} ms / p99 {lt['p99_ms']:.0f} ms"
             if lt["p50_ms"] is not None else "no latency logged")
    section["headline"] = (
        f"{speed}; {100 * (e['failed_share'] or 0):.1f}% failed, {100 * (e['rate_limited_share'] or 0):.1f}% "
        f"rate-limited; {growth_text}"
    )
    return section
