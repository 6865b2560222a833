"""Latency / TTFT percentiles, failure and rate-limit rates, weekly trend and growth fit
(audit/traffic.py): the fit on synthetic series, then the sample's ground truth."""

from __future__ import annotations

import math
import random
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from audit.traffic import fit_growth


def synthetic(rate: float, days: int, start: date, noise: float = 0.0, seed: int = 1) -> tuple[list[date], list[float]]:
    rng = random.Random(seed)
    ds = [start + timedelta(days=i) for i in range(days)]
    vals = []
    for i, d in enumerate(ds):
        weekend = 0.35 if d.weekday() >= 5 else 1.0
        mean = 200 * (1 + rate) ** (i / 7) * weekend
        vals.append(mean * (1 + rng.uniform(-noise, noise)))
    return ds, vals


def test_growth_fit_recovers_an_exact_exponential_with_weekends() -> None:
    for rate in (0.0, 0.04, -0.03, 0.15):
        ds, vals = synthetic(rate, 45, date(2026, 9, 1))
        fit = fit_growth(ds, vals)
        assert fit is not None
        assert fit.weekly_rate == pytest.approx(rate, abs=1e-6)
        assert fit.six_month_factor == pytest.approx((1 + rate) ** 26, rel=1e-5)


def test_growth_fit_interval_covers_the_truth_under_noise() -> None:
    ds, vals = synthetic(0.05, 60, date(2026, 1, 5), noise=0.3, seed=4)
    fit = fit_growth(ds, vals, trim_edges=True)
    assert fit is not None and fit.days_used == 58
    lo, hi = fit.weekly_rate_ci95
    assert lo < 0.05 < hi and hi - lo < 0.05


def test_growth_fit_counts_missing_days_as_zero_and_needs_data() -> None:
    ds, vals = synthetic(0.0, 28, date(2026, 3, 2))
    keep = [(d, v) for d, v in zip(ds, vals, strict=True) if d.weekday() < 5]  # weekends silent
    fit = fit_growth([d for d, _ in keep], [v for _, v in keep])
    assert fit is not None and abs(fit.weekly_rate) < 1e-3
    assert fit_growth([], []) is None
    assert fit_growth([date(2026, 1, 1)], [5.0]) is None


# --- the sample's ground truth ----------------------------------------------------------------------


def _percentile(vals: list[float], q: float) -> float:
    vals = sorted(vals)
    pos = (len(vals) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(vals) - 1)
    return vals[lo] + (vals[hi] - vals[lo]) * (pos - lo)


def test_sample_latency_matches_truth(sample_cost_cache_traffic: tuple[Path, dict], sample_truth: dict,
                                      sample_truth_requests: dict) -> None:
    _, sections = sample_cost_cache_traffic
    t = sections["traffic"]
    truth = sample_truth["latency"]
    # truth.json's percentiles cover every envelope and LiteLLM call (failed ones included, batch
    # excluded). The store holds two more such calls than the truth lists (copies of valid records
    # planted among the bad lines), which moves a percentile by at most a few ms: 1%.
    assert t["latency_including_failed"]["n"] == pytest.approx(truth["count"], abs=2)
    for q in ("p50_ms", "p90_ms", "p99_ms"):
        assert t["latency_including_failed"][q] == pytest.approx(truth[q], rel=0.01), q
    # The headline figures describe successful calls only; recompute them from the per-request truth.
    ok = [r["latency_ms"] for r in sample_truth_requests.values()
          if r["status"] == "ok" and r["latency_ms"] is not None and r["format"] != "openai_batch"]
    for q, p in (("p50_ms", 0.5), ("p90_ms", 0.9), ("p99_ms", 0.99)):
        assert t["latency"][q] == pytest.approx(_percentile(ok, p), rel=0.01), q
    assert t["latency"]["ttft_n"] > 0 and t["latency"]["ttft_p50_ms"] < t["latency"]["p50_ms"]
    assert set(t["latency_by_model"]) >= {"gpt-4o", "gpt-4.1-mini"}


def test_sample_error_and_rate_limit_rates(sample_cost_cache_traffic: tuple[Path, dict], sample_truth: dict,
                                           sample_truth_requests: dict) -> None:
    _, sections = sample_cost_cache_traffic
    e = sections["traffic"]["errors"]
    assert e["failed"] == sample_truth["requests"]["errors"]
    # The generator answers a 429 within 60-400 ms and any other failure after 2-30 s (generate.py),
    # so the truth's rate-limited calls are its failed calls faster than one second.
    limited = sum(1 for r in sample_truth_requests.values()
                  if r["status"] == "error" and r["latency_ms"] is not None and r["latency_ms"] < 1000)
    assert e["rate_limited"] == limited
    assert e["rate_limited_share"] == pytest.approx(limited / e["requests"], abs=1e-4)


def test_sample_weekly_volume_and_growth(sample_cost_cache_traffic: tuple[Path, dict], sample_truth: dict,
                                         sample_truth_requests: dict) -> None:
    out, sections = sample_cost_cache_traffic
    g = sections["traffic"]["growth"]
    true_rate = sample_truth["growth"]["weekly_growth_rate"]
    # 43 fitted days of bursty session traffic: the 95% interval is about +-1 point wide, so the
    # estimate must land within 1.5 points of the planted rate and its interval must cover it.
    assert g["weekly_growth_rate"] == pytest.approx(true_rate, abs=0.015)
    lo, hi = g["weekly_growth_rate_ci95"]
    assert lo <= true_rate <= hi
    # The summary rounds the rate to 1e-4, which moves (1 + g)^26 by up to 26 * 5e-5 relative.
    assert g["projected_6_month_factor"] == pytest.approx((1 + g["weekly_growth_rate"]) ** 26, rel=2e-3)
    assert g["requests_per_month_in_6_months"] > g["requests_per_month_now"]
    # Weekly volume per Monday-based week equals the truth's calls counted the same way.
    con = duckdb.connect()
    weekly = dict(con.sql(f"SELECT week_start, requests FROM read_parquet('{out / 'traffic_weekly.parquet'}')").fetchall())
    truth_weeks: dict[date, int] = {}
    for r in sample_truth_requests.values():
        d = date.fromisoformat(r["ts"][:10])
        monday = d - timedelta(days=d.weekday())
        truth_weeks[monday] = truth_weeks.get(monday, 0) + 1
    # The store holds two records of bad/bad_lines.jsonl that the truth does not count as calls (one
    # without an id, one without a timestamp: ingest keeps both) and lacks the timestamp of one
    # expired batch request, so a week may differ by at most 2.
    for monday, n in truth_weeks.items():
        assert abs(weekly[monday] - n) <= 2, monday
    assert abs(sum(weekly.values()) - sum(truth_weeks.values())) <= 3
    spend = pq.read_table(out / "traffic_weekly.parquet").column("cost_usd").to_pylist()
    assert sum(spend) == pytest.approx(sample_truth["spend"]["total_usd"], rel=1e-6)
