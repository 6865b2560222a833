"""Spend from usage x the price table (audit/cost.py, audit/prices.py), checked against the sample's
ground truth and against hand-computed planted requests."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from planted_store import row, write_store

from audit import cost
from audit.prices import base_model_name, load_prices, normalize_model_name
from pipeline.errors import ConfigError

# --- price table -----------------------------------------------------------------------------


def test_shipped_price_table_loads_with_sources_and_dates() -> None:
    prices = load_prices()
    assert prices.currency == "USD" and prices.version
    for m in prices.models:
        assert m.source, m.key
        assert m.effective_from <= date(2026, 12, 31)
        assert m.cache_rules in prices.rules
        assert m.output >= m.input >= m.cached_input >= 0, m.key


@pytest.mark.parametrize(
    ("model", "key"),
    [
        ("gpt-4o", "gpt-4o"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),  # longest prefix wins over gpt-4o
        ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("openai/gpt-4.1", "gpt-4.1"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4"),
        ("us.anthropic.claude-3-5-sonnet-20240620-v1:0", "claude-sonnet-4"),
        ("claude-haiku-4-5", "claude-haiku-4-5"),
        ("o3-mini", "o3-mini"),
        ("o3", "o3"),
        ("o3x", None),  # a prefix must end at a separator
        ("llama-3.1-8b-instant", None),
    ],
)
def test_model_lookup(model: str, key: str | None) -> None:
    price = load_prices().lookup(model, date(2026, 9, 1))
    assert (price.key if price else None) == key


def test_dated_versions_pick_the_price_in_force(tmp_path: Path) -> None:
    p = tmp_path / "prices.toml"
    p.write_text(
        """
version = "t"
currency = "USD"
[cache_rules.none]
kind = "none"
[[models]]
key = "m"
match = ["m"]
input = 1.0
output = 2.0
cache_rules = "none"
effective_from = "2026-01-01"
source = "old"
[[models]]
key = "m"
match = ["m"]
input = 0.5
output = 1.0
cache_rules = "none"
effective_from = "2026-06-01"
source = "new"
""",
        encoding="utf-8",
    )
    prices = load_prices(p)
    assert prices.lookup("m", date(2026, 3, 1)).input == 1.0
    assert prices.lookup("m", date(2026, 7, 1)).input == 0.5
    assert prices.lookup("m", date(2025, 1, 1)).input == 1.0  # older logs: earliest entry
    assert prices.lookup("m").input == 0.5


def test_bad_price_file_is_a_config_error(tmp_path: Path) -> None:
    p = tmp_path / "prices.toml"
    p.write_text('[[models]]\nkey = "m"\nmatch = ["m"]\ninput = 1\noutput = 1\ncache_rules = "nope"\n'
                 'effective_from = "2026-01-01"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="cache_rules 'nope' is not defined"):
        load_prices(p)
    p.write_text('currency = "EUR"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="currency"):
        load_prices(p)


def test_model_name_normalization() -> None:
    assert normalize_model_name("models/gemini-2.5-flash") == "gemini-2.5-flash"
    assert normalize_model_name("claude-sonnet-4@20250514") == "claude-sonnet-4-20250514"
    assert base_model_name("claude-sonnet-4-5-20250929") == base_model_name("claude-sonnet-4-5")
    assert base_model_name("gpt-4o-2024-08-06") == "gpt-4o"


# --- planted requests: every bucket priced by hand ---------------------------------------------


def test_planted_costs(tmp_path: Path) -> None:
    t = datetime(2026, 9, 1, 12, tzinfo=UTC)
    write_store(tmp_path, [
        # Anthropic: 1000 uncached, 2000 read, 300 write 5m, 100 write 1h, 50 unspecified, 500 out.
        row(request_id="a", ts=t, provider="anthropic", model="claude-sonnet-4-5", in_uncached=1000,
             in_cache_read=2000, in_cache_write_5m=300, in_cache_write_1h=100, in_cache_write_unspecified=50,
             out_total=500),
        # OpenAI batch: half price on every bucket.
        row(request_id="b", ts=t, provider="openai", model="gpt-4o", model_resolved="gpt-4o-2024-08-06",
             is_batch=True, in_uncached=1000, in_cache_read=1024, out_total=100),
        # Unknown model with usage: counted, not priced.
        row(request_id="c", ts=t, provider="other", model="mystery-1", in_uncached=10, out_total=10),
        # Known model without usage: not priced.
        row(request_id="d", ts=t, provider="openai", model="gpt-4o", usage_missing=True),
    ])
    out = tmp_path / "audit"
    out.mkdir()
    section = cost.run(tmp_path, out, {})
    rows = {r["request_id"]: r for r in pq.read_table(out / "request_costs.parquet").to_pylist()}
    a = (1000 * 3.00 + 2000 * 0.30 + 300 * 3.75 + 100 * 6.00 + 50 * 3.75 + 500 * 15.00) / 1e6
    assert rows["a"]["cost_usd"] == pytest.approx(a, rel=1e-12)
    assert rows["a"]["cost_cache_write_usd"] == pytest.approx((300 * 3.75 + 100 * 6.00 + 50 * 3.75) / 1e6)
    assert rows["a"]["cost_uncached_usd"] == pytest.approx((3450 * 3.00 + 500 * 15.00) / 1e6)
    b = (1000 * 2.50 + 1024 * 1.25 + 100 * 10.00) / 1e6
    assert rows["b"]["cost_usd"] == pytest.approx(b / 2) and rows["b"]["batch_discount_usd"] == pytest.approx(b / 2)
    assert rows["b"]["price_model_key"] == "gpt-4o"
    parts = sum(rows["b"][k] for k in ("cost_input_usd", "cost_cached_input_usd", "cost_cache_write_usd",
                                      "cost_output_usd"))
    assert parts == pytest.approx(rows["b"]["cost_usd"])  # components sum to the total
    assert rows["c"]["priced"] is False and rows["c"]["cost_usd"] is None
    assert rows["d"]["priced"] is False and rows["d"]["price_model_key"] == "gpt-4o"
    assert section["total_usd"] == pytest.approx(a + b / 2, abs=1e-6)  # the summary rounds to 1e-6 USD
    assert [u["model"] for u in section["unpriced_models"]] == ["mystery-1"]
    assert "unpriced" in section["headline"]


# --- the sample's ground truth -----------------------------------------------------------------


def test_sample_spend_matches_truth(sample_cost_cache_traffic: tuple[Path, dict], sample_truth: dict) -> None:
    out, sections = sample_cost_cache_traffic
    spend = sample_truth["spend"]
    # The generator prices the same buckets with the same list prices (truth.json "prices", which the
    # price table agrees with), so the only differences are float summation order: 1e-6 relative.
    assert sections["cost"]["total_usd"] == pytest.approx(spend["total_usd"], rel=1e-6)
    for model, key in (("gpt-4.1-mini", "gpt-4.1-mini"), ("gpt-4o", "gpt-4o"),
                       ("claude-sonnet-4-5", "claude-sonnet-4"), ("claude-haiku-4-5", "claude-haiku-4-5")):
        p = load_prices().lookup(model)
        assert p is not None and p.key == key
        tp = sample_truth["prices"][model]
        assert (p.input, p.cached_input, p.output) == (tp["input_per_mtok"], tp["cached_input_per_mtok"],
                                                      tp["output_per_mtok"])
    con = duckdb.connect()
    by_model = dict(con.sql(
        f"SELECT price_model_key, sum(cost_usd) FROM read_parquet('{out / 'request_costs.parquet'}') GROUP BY 1"
    ).fetchall())
    sonnet = spend["by_model"]["claude-sonnet-4-5"]
    assert by_model["claude-sonnet-4"] == pytest.approx(sonnet, rel=1e-6)
    assert by_model["gpt-4o"] == pytest.approx(spend["by_model"]["gpt-4o"], rel=1e-6)
    days = dict(con.sql(
        f"SELECT CAST(period_start AS VARCHAR), cost_usd FROM read_parquet('{out / 'cost_by_period.parquet'}') "
        "WHERE grain = 'day'"
    ).fetchall())
    for day, usd in spend["by_day"].items():
        # Daily sums carry the truth's rounding to 1e-6 USD.
        assert days[day] == pytest.approx(usd, abs=2e-6), day
    weeks = con.sql(f"SELECT sum(cost_usd) FROM read_parquet('{out / 'cost_by_period.parquet'}') WHERE grain='week'")
    assert weeks.fetchall()[0][0] == pytest.approx(spend["total_usd"], rel=1e-6)


def test_sample_spend_per_request(sample_cost_cache_traffic: tuple[Path, dict], sample_truth_requests: dict) -> None:
    out, _ = sample_cost_cache_traffic
    rows = pq.read_table(out / "request_costs.parquet").to_pylist()
    checked = 0
    for r in rows:
        t = sample_truth_requests.get(r["request_id"])
        if t is None:
            continue
        checked += 1
        assert (r["cost_usd"] or 0.0) == pytest.approx(t["spend_usd"], abs=1e-9), r["request_id"]
    assert checked >= 0.99 * len(sample_truth_requests)


def test_monthly_run_rate(sample_cost_cache_traffic: tuple[Path, dict], sample_truth: dict) -> None:
    _, sections = sample_cost_cache_traffic
    c = sections["cost"]
    days = sample_truth["window"]["days"]
    assert c["window"]["days"] == days
    # the cache module projects per month over the same window (cost_window.sql, not the rollup)
    assert sections["cache"]["projections_usd_per_month"]["window_days"] == days
    assert c["monthly_run_rate_usd"] == pytest.approx(sample_truth["spend"]["total_usd"] / days * 365.25 / 12, rel=1e-3)
    assert c["total_without_caching_usd"] > c["total_usd"]  # the sample caches, so caching saved money
