"""Price dates and model matching pinned from both sides (audit/prices.py, audit/cost.py and
cost_request_costs.sql): the last second before a new price, the first second of it, the day lookup
on either side of `effective_from`, and the longest-prefix rule at a separator."""

from __future__ import annotations

import hashlib
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


def test_cost_section_by_hand(prices_file: Path, tmp_path: Path) -> None:
    """The summary section's every figure worked by hand (1 M-token units keep the rounding visible)."""
    wd = tmp_path / "work"
    mtok = 1_000_000
    write_store(wd, [
        row(request_id="before", ts=CHANGE - timedelta(seconds=1), provider="x", model="m", in_uncached=mtok,
            in_cache_read=mtok, out_total=mtok),  # 1 + 0.5 + 2 = 3.5 USD
        row(request_id="at", ts=CHANGE, provider="x", model="m", in_uncached=mtok, in_cache_read=mtok,
            out_total=mtok),  # 4 + 2 + 8 = 14
        row(request_id="older", ts=datetime(2025, 6, 1, tzinfo=UTC), provider="x", model="m", in_uncached=mtok,
            out_total=0),  # 1
        row(request_id="mini", ts=datetime(2026, 3, 1, tzinfo=UTC), provider="x", model="m-mini", in_uncached=mtok,
            out_total=mtok),  # 0.1 + 0.2
        row(request_id="nousage", ts=datetime(2026, 3, 2, tzinfo=UTC), provider="x", model="m", usage_missing=True),
        row(request_id="mystery", ts=datetime(2026, 3, 3, tzinfo=UTC), provider="x", model="zz", in_uncached=10,
            out_total=1),
    ])
    out = tmp_path / "audit"
    out.mkdir()
    s = cost.run(wd, out, {"audit": {"cost": {"prices": str(prices_file)}}})
    assert s["currency"] == "USD" and s["price_table"]["path"] == str(prices_file)
    assert s["price_table"]["sha256"] == hashlib.sha256(prices_file.read_bytes()).hexdigest()
    assert (s["requests"], s["priced_requests"], s["requests_without_usage"], s["requests_unpriced_model"]) == (
        6, 4, 1, 1)
    days = (date(2026, 6, 1) - date(2025, 6, 1)).days + 1
    assert s["window"]["days"] == days == 366
    assert s["total_usd"] == pytest.approx(3.5 + 14 + 1 + 0.3)
    assert s["components_usd"] == pytest.approx({"input": 1 + 4 + 1 + 0.1, "cached_input": 0.5 + 2,
                                                 "cache_write": 0.0, "output": 2 + 8 + 0.2,
                                                 "batch_discount_saved": 0.0})
    uncached = (2 * 1 + 2) + (2 * 4 + 8) + 1 + 0.3
    assert s["total_without_caching_usd"] == pytest.approx(uncached)
    assert s["caching_saved_usd"] == pytest.approx(uncached - 18.8)
    assert s["monthly_run_rate_usd"] == round(18.8 / 366 * 365.25 / 12, 2) == 1.56
    assert s["monthly_run_rate_without_caching_usd"] == round(uncached / 366 * 365.25 / 12, 2) == 1.77
    by_model = {m["model"]: m for m in s["by_model"]}
    assert by_model["m"]["cost_usd"] == pytest.approx(18.5) and by_model["m"]["price_model_key"] == "m"
    assert by_model["m"]["requests"] == 4 and by_model["m"]["input_tokens"] == 5 * mtok
    assert by_model["m-mini"]["output_tokens"] == mtok
    assert [u["model"] for u in s["unpriced_models"]] == ["zz"]
    assert s["reported_cost"]["rows"] == 0
    assert s["headline"] == ("$18.80 over 366 days (run-rate $2/month; $21.30 without caching); top model m; "
                             "1 model(s) unpriced")


def test_rules_for_applies_the_per_model_minimum() -> None:
    prices = load_prices()
    assert prices.rules_for(None).kind == "none" and prices.rules_for(None).name == "none"
    assert prices.rules_for(prices.lookup("claude-haiku-4-5")).min_tokens == 4096  # override
    assert prices.rules_for(prices.lookup("gpt-4o")).min_tokens == 1024  # the rule set's own
    assert prices.rules_for(prices.lookup("gpt-4o")).name == "openai_auto"


@pytest.mark.parametrize(("raw", "normalized"), [
    ("openrouter/openai/gpt-4o", "gpt-4o"), ("us.anthropic.claude-sonnet-4-5-20250929-v1:0",
                                           "claude-sonnet-4-5-20250929"),
    ("openai.gpt-oss-120b-1:0", "gpt-oss-120b-1:0"), ("google.gemini-2.5-pro", "gemini-2.5-pro"),
    ("deepseek.r1-v1", "r1"), ("Mistral-Large-V2", "mistral-large"), ("", ""), (None, ""),
])
def test_model_name_normalization_by_hand(raw: str | None, normalized: str) -> None:
    from audit.prices import normalize_model_name

    assert normalize_model_name(raw) == normalized


def test_longer_prefix_wins_whatever_the_file_order(tmp_path: Path) -> None:
    p = tmp_path / "prices.toml"
    p.write_text('version = "t"\n[cache_rules.none]\nkind = "none"\n'
                 '[[models]]\nkey = "long"\nmatch = ["mm-mini"]\ninput = 1\noutput = 1\ncache_rules = "none"\n'
                 'effective_from = "2026-01-01"\n'
                 '[[models]]\nkey = "short"\nmatch = ["mm"]\ninput = 2\noutput = 2\ncache_rules = "none"\n'
                 'effective_from = "2026-06-01"\n', encoding="utf-8")
    prices = load_prices(p)
    assert prices.lookup("mm-mini-x", date(2026, 7, 1)).key == "long"
    assert prices.lookup("mm-x", date(2026, 7, 1)).key == "short"


def test_resolved_snapshot_is_what_was_billed(prices_file: Path, tmp_path: Path) -> None:
    wd = tmp_path / "work"
    write_store(wd, [row(request_id="r", ts=CHANGE, provider="x", model="m", model_resolved="m-mini-2026",
                         in_uncached=1_000_000, out_total=0)])
    out = tmp_path / "audit"
    out.mkdir()
    cost.run(wd, out, {"audit": {"cost": {"prices": str(prices_file)}}})
    (r,) = pq.read_table(out / "request_costs.parquet").to_pylist()
    assert r["price_model_key"] == "m-mini" and r["cost_usd"] == pytest.approx(0.1)


def test_summarize_rounding_keys_and_limits() -> None:
    """The section from a totals row by hand: USD rounded to 6 decimals, run rates to 2, at most 20
    models listed, the headline's placeholders when nothing is known."""
    first, last = datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 9, 30, 12, tzinfo=UTC)
    totals = {"first_ts": first, "last_ts": last, "cost_usd": 1.23456789, "cost_uncached_usd": 2.00000049,
              "requests": 9, "priced_requests": 8, "requests_without_usage": 1, "requests_unpriced_model": 0,
              "cost_input_usd": 0.12345678, "cost_cached_input_usd": 0.00000049, "cost_cache_write_usd": 0.33333349,
              "cost_output_usd": 0.77777751, "batch_discount_usd": 0.00000051, "rows_with_reported_cost": 2,
              "reported_cost_usd": 0.5, "recomputed_cost_usd_same_rows": 0.49}
    models = [{"model": f"m{i}", "price_model_key": "k", "requests": 1, "input_tokens": 1, "output_tokens": 1,
               "cost_usd": 0.1234567} for i in range(21)]
    s = cost.summarize(totals, models, [], load_prices())
    assert s["price_table"]["version"] == load_prices().version
    # the shipped table by its place in the package, not this checkout's absolute path
    shipped = Path(cost.__file__).with_name("prices.toml")
    assert s["price_table"] == {"version": load_prices().version, "path": "audit/prices.toml",
                                "sha256": hashlib.sha256(shipped.read_bytes()).hexdigest()}
    assert s["window"] == {"first_ts": first, "last_ts": last, "days": 30.0}
    assert s["total_usd"] == 1.234568 and s["total_without_caching_usd"] == 2.0
    assert s["caching_saved_usd"] == 0.765433
    assert s["components_usd"] == {"input": 0.123457, "cached_input": 0.0, "cache_write": 0.333333,
                                   "output": 0.777778, "batch_discount_saved": 0.000001}
    assert s["monthly_run_rate_usd"] == round(1.23456789 / 30 * 365.25 / 12, 2) == 1.25
    assert len(s["by_model"]) == 20 and s["by_model"][0]["cost_usd"] == 0.123457
    assert s["reported_cost"] == {"rows": 2, "reported_usd": 0.5, "recomputed_usd": 0.49}
    assert s["headline"] == "$1.23 over 30 days (run-rate $1/month; $2.00 without caching); top model m0"
    empty = cost.summarize({**totals, "first_ts": None, "last_ts": None}, [], [], load_prices())
    assert empty["window"]["days"] == 0.0 and empty["monthly_run_rate_usd"] == 0.0
    assert empty["headline"].endswith("top model -")


@pytest.mark.parametrize(("days", "rate"), [(1.0, 30.44), (0.5, 60.88), (0.0, 0.0)])
def test_monthly_for_short_windows(days: float, rate: float) -> None:
    assert round(cost.monthly(1.0, days), 2) == rate


def test_versions_are_half_open_utc_intervals(tmp_path: Path) -> None:
    """Three versions of one key: [1970, v2), [v2, v3), [v3, open); the first reaches back to 1970 so
    that older logs are priced."""
    p = tmp_path / "prices.toml"
    entries = "".join(f'[[models]]\nkey = "k"\nmatch = ["k"]\ninput = {i}\noutput = 1\ncache_rules = "none"\n'
                      f'effective_from = "{day}"\n' for i, day in enumerate(["2026-01-01", "2026-03-01", "2026-06-15"]))
    p.write_text('version = "t"\n[cache_rules.none]\nkind = "none"\n' + entries, encoding="utf-8")
    got = [(m.input, start, end) for m, start, end in load_prices(p).versions()]
    assert got == [
        (0.0, datetime(1970, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)),
        (1.0, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 6, 15, tzinfo=UTC)),
        (2.0, datetime(2026, 6, 15, tzinfo=UTC), None),
    ]
    assert all(s.tzinfo is UTC and (e is None or e.tzinfo is UTC) for _, s, e in got)


@pytest.mark.parametrize(("price", "requests", "overflows"), [
    (9.0e13, 1, False),  # 9e19 USD: just inside the exact range
    (9.0e13, 2, True),  # 1.8e20 USD: the sum leaves it
    (1.0e15, 1, True),  # 1e21 USD: one request already outside
])
def test_money_beyond_the_exact_range_is_a_clear_audit_error(tmp_path: Path, price: float, requests: int,
                                                            overflows: bool) -> None:
    """Money is summed as DECIMAL(38, 18): beyond 1e20 USD the audit names the module and the likely
    cause (a price or a token count off by orders of magnitude), not DuckDB's cast error."""
    from audit.stage import audit
    from pipeline.errors import AuditError

    prices = tmp_path / "prices.toml"
    prices.write_text(PRICES.replace("input = 1.0\n", f"input = {price:e}\n", 1), encoding="utf-8")
    wd = tmp_path / "work"
    write_store(wd, [row(request_id=f"r{i}", ts=datetime(2026, 3, 1, tzinfo=UTC), provider="x", model="m",
                         in_uncached=10**12, out_total=1) for i in range(requests)])
    config = {"audit": {"cost": {"prices": str(prices)}}, "run": {"workers": 1}}
    if not overflows:
        result = audit(wd, config)
        assert result.summary_json["sections"]["cost"]["total_usd"] == pytest.approx(price * 1e6 * requests, rel=1e-9)
        return
    with pytest.raises(AuditError, match=r"Audit module audit\.\w+: a money amount or sum is beyond 1e20 USD"):
        audit(wd, config)
