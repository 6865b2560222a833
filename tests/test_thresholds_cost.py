"""Price dates and model matching pinned from both sides (audit/prices.py, audit/cost.py and
cost_request_costs.sql): the last second before a new price, the first second of it, the day lookup
on either side of `effective_from`, and the longest-prefix rule at a separator."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from planted_store import row, write_store

from audit import cost
from audit.prices import load_prices

PRICES = """
version = "t"
currency = "USD"
[cache_rules.none]
kind = "none"
[[models]]
key = "m"
match = ["m"]
input = 1.0
cached_input = 0.5
output = 2.0
cache_rules = "none"
effective_from = "2026-01-01"
[[models]]
key = "m"
match = ["m"]
input = 4.0
cached_input = 2.0
output = 8.0
cache_rules = "none"
effective_from = "2026-06-01"
[[models]]
key = "m-mini"
match = ["m-mini"]
input = 0.1
output = 0.2
cache_rules = "none"
effective_from = "2026-01-01"
"""
CHANGE = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
def prices_file(tmp_path: Path) -> Path:
    p = tmp_path / "prices.toml"
    p.write_text(PRICES, encoding="utf-8")
    return p


@pytest.mark.parametrize(("day", "price"), [(date(2026, 5, 31), 1.0), (date(2026, 6, 1), 4.0),
                                            (date(2026, 6, 2), 4.0), (date(2026, 1, 1), 1.0),
                                            (date(2025, 12, 31), 1.0)])
def test_lookup_on_either_side_of_effective_from(prices_file: Path, day: date, price: float) -> None:
    assert load_prices(prices_file).lookup("m", day).input == price
    assert load_prices(prices_file).lookup("m", datetime(day.year, day.month, day.day, 23, 59, tzinfo=UTC)).input == price


@pytest.mark.parametrize(("model", "key"), [
    ("m", "m"), ("m-2026-01-01", "m"), ("m-mini", "m-mini"), ("m-mini-2026", "m-mini"), ("M-Mini", "m-mini"),
    ("mx", None), ("m-minix", "m"), ("openai/m-mini", "m-mini"), ("", None), (None, None),
])
def test_longest_prefix_ending_at_a_separator(prices_file: Path, model: str | None, key: str | None) -> None:
    found = load_prices(prices_file).lookup(model, date(2026, 3, 1))
    assert (found.key if found else None) == key


def test_request_costs_switch_price_at_midnight_utc(prices_file: Path, tmp_path: Path) -> None:
    wd = tmp_path / "work"
    write_store(wd, [
        row(request_id="before", ts=CHANGE - timedelta(seconds=1), provider="x", model="m", in_uncached=1000,
            in_cache_read=1000, out_total=1000),
        row(request_id="at", ts=CHANGE, provider="x", model="m", in_uncached=1000, in_cache_read=1000,
            out_total=1000),
        row(request_id="first_day", ts=datetime(2026, 1, 1, tzinfo=UTC), provider="x", model="m", in_uncached=1000,
            out_total=0),
        row(request_id="older", ts=datetime(2025, 6, 1, tzinfo=UTC), provider="x", model="m", in_uncached=1000,
            out_total=0),
        row(request_id="undated", ts=None, provider="x", model="m", in_uncached=1000, out_total=0),
    ])
    out = tmp_path / "audit"
    out.mkdir()
    section = cost.run(wd, out, {"audit": {"cost": {"prices": str(prices_file)}}})
    rows = {r["request_id"]: r for r in pq.read_table(out / "request_costs.parquet").to_pylist()}
    assert rows["before"]["cost_usd"] == pytest.approx((1000 * 1.0 + 1000 * 0.5 + 1000 * 2.0) / 1e6, rel=1e-12)
    assert rows["at"]["cost_usd"] == pytest.approx((1000 * 4.0 + 1000 * 2.0 + 1000 * 8.0) / 1e6, rel=1e-12)
    assert rows["before"]["price_effective_from"] == date(2026, 1, 1)
    assert rows["at"]["price_effective_from"] == date(2026, 6, 1)
    assert rows["first_day"]["cost_usd"] == pytest.approx(1000 * 1.0 / 1e6)
    assert rows["older"]["cost_usd"] == pytest.approx(1000 * 1.0 / 1e6)  # before every entry: the earliest
    assert rows["undated"]["cost_usd"] == pytest.approx(1000 * 4.0 / 1e6)  # no date: the latest
    assert section["total_usd"] == pytest.approx((3500 + 14000 + 1000 + 1000 + 4000) / 1e6, abs=1e-6)


@pytest.mark.parametrize(("first", "last", "days"), [
    (datetime(2026, 9, 1, 23, 59, tzinfo=UTC), datetime(2026, 9, 2, 0, 1, tzinfo=UTC), 2.0),
    (datetime(2026, 9, 1, 0, 0, tzinfo=UTC), datetime(2026, 9, 1, 23, 59, tzinfo=UTC), 1.0),
    (None, datetime(2026, 9, 1, tzinfo=UTC), 0.0),
])
def test_window_days_counts_both_calendar_days(first: datetime | None, last: datetime, days: float) -> None:
    assert cost.window_days(first, last) == days


def test_monthly_run_rate_by_hand() -> None:
    assert cost.monthly(30.0, 30.0) == pytest.approx(365.25 / 12)
    assert cost.monthly(10.0, 0.0) == 0.0
