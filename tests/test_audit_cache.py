"""Cacheable-prefix simulation, token segments and prefix breakers (audit/cache.py, cache_sim.py,
tokens.py, dynamic_spans.py): provider rules on planted requests, then the sample's ground truth."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from planted_store import msg, row, write_store

from audit import cache, cost, dynamic_spans
from audit.cache_sim import SimRow, simulate_partition
from audit.dynamic_spans import find_spans
from audit.prices import load_prices
from audit.token_accounting import (
    Block,
    TokenMemo,
    count_request_naive,
    request_blocks,
    tokenize_request,
    tokenize_store,
)
from pipeline.executor import LocalExecutor
from pipeline.tokens import get_encoding

PRICES = load_prices()
OPENAI = PRICES.rules["openai_auto"]
ANTHROPIC = dataclasses.replace(PRICES.rules["anthropic"], min_tokens=1024)
OPENAI_BP = PRICES.rules["openai_breakpoints"]
B = 64
T0 = 1_788_000_000_000  # ms
MIN = 60_000


def auto_row(rid: str, minute: float, hashes: list[int], input_tokens: int | None = None) -> SimRow:
    n = input_tokens if input_tokens is not None else len(hashes) * B + 20
    return SimRow(rid, T0 + int(minute * MIN), OPENAI, 1.0, n, hashes, [], [], [])


def bp_row(rid: str, minute: float, block_hashes: list[int], ends: list[int], bps: list[tuple[int, bool]],
           rules: object = ANTHROPIC) -> SimRow:
    return SimRow(rid, T0 + int(minute * MIN), rules, 1.0, ends[-1] + 50, [], ends, block_hashes, bps)  # type: ignore[arg-type]


def sim(rows: list[SimRow]) -> dict[str, tuple[int, int, int]]:
    return {r.request_id: (r.read, r.write_5m, r.write_1h) for r in simulate_partition(rows, B)}


# --- OpenAI automatic caching ----------------------------------------------------------------------

SHARED = list(range(1, 21))  # 20 blocks = 1,280 tokens of shared prefix


def test_openai_longest_live_prefix_in_128_token_steps() -> None:
    out = sim([
        auto_row("a", 0, SHARED),
        auto_row("b", 1, SHARED[:17] + [901, 902, 903]),  # 17 blocks = 1,088 shared -> 1,024
        auto_row("c", 2, SHARED),  # a's full prompt: 1,280
    ])
    assert out["a"] == (0, 0, 0)
    assert out["b"] == (1024, 0, 0)
    assert out["c"] == (1280, 0, 0)


def test_openai_minimum_1024_and_no_write_below_it() -> None:
    out = sim([
        auto_row("short", 0, SHARED[:14], input_tokens=900),  # below 1,024: neither read nor stored
        auto_row("long", 1, SHARED),
        auto_row("shares_15_blocks", 2, SHARED[:15] + [77]),  # 960 shared: below the minimum hit
    ])
    assert out["long"] == (0, 0, 0)  # the short prompt was never cached
    assert out["shares_15_blocks"] == (0, 0, 0)


def test_openai_ttl_is_minutes_of_disuse() -> None:
    out = sim([
        auto_row("a", 0, SHARED),
        auto_row("b", 4, SHARED),  # hit, re-arms the entry
        auto_row("c", 8.5, SHARED),  # 4.5 min after b: still alive
        auto_row("d", 14, SHARED),  # 5.5 min after c: expired
    ])
    assert [out[k][0] for k in "abcd"] == [0, 1280, 1280, 0]


# --- Anthropic breakpoints ---------------------------------------------------------------------------


def test_anthropic_reads_only_at_logged_breakpoints() -> None:
    hashes, ends = [11, 12, 13], [100, 1500, 1600]  # tools, system, user
    out = sim([
        bp_row("write", 0, hashes, ends, [(1, False)]),
        bp_row("read", 2, hashes, ends, [(1, False)]),
        bp_row("no_marker", 3, hashes, ends, []),  # identical prompt, no cache_control: nothing cached
    ])
    assert out["write"] == (0, 1500, 0)
    assert out["read"] == (1500, 0, 0)
    assert out["no_marker"] == (0, 0, 0)


def test_anthropic_minimum_ttl_refresh_and_one_hour() -> None:
    hashes, ends = [11, 12, 13], [100, 900, 1000]
    below = sim([bp_row("a", 0, hashes, ends, [(1, False)]), bp_row("b", 1, hashes, ends, [(1, False)])])
    assert below == {"a": (0, 0, 0), "b": (0, 0, 0)}  # 900 < 1,024: silently not cached

    hashes, ends = [21, 22, 23], [100, 1500, 1600]
    out = sim([
        bp_row("a", 0, hashes, ends, [(1, False)]),
        bp_row("b", 4, hashes, ends, [(1, False)]),  # read refreshes the 5-minute TTL
        bp_row("c", 8, hashes, ends, [(1, False)]),
        bp_row("d", 14, hashes, ends, [(1, False)]),  # 6 min idle: written again
    ])
    assert [out[k] for k in "abcd"] == [(0, 1500, 0), (1500, 0, 0), (1500, 0, 0), (0, 1500, 0)]

    hashes = [31, 32, 33]
    out = sim([bp_row("a", 0, hashes, ends, [(1, True)]), bp_row("b", 45, hashes, ends, [(1, True)])])
    assert out == {"a": (0, 0, 1500), "b": (1500, 0, 0)}


def test_anthropic_lookback_of_20_blocks() -> None:
    base = list(range(100, 110))  # r1: 10 blocks, breakpoint after block 4 (1,500 tokens)
    ends = [300 * (i + 1) for i in range(40)]
    longer = base + list(range(500, 530))
    r1 = bp_row("r1", 0, base, ends[:10], [(4, False)])
    within = sim([r1, bp_row("within", 1, longer, ends, [(24, False)])])  # 24 - 20 = 4: in reach
    assert within["within"] == (ends[4], ends[24] - ends[4], 0)  # reads r1's entry, writes the rest
    beyond = sim([r1, bp_row("beyond", 1, longer, ends, [(25, False)])])  # 25 - 20 = 5: out of reach
    assert beyond["beyond"] == (0, ends[25], 0)


def test_openai_gpt56_implicit_breakpoint_at_the_end() -> None:
    ends = [600, 1200, 1800]
    out = sim([
        bp_row("turn1", 0, [1, 2, 3], ends, [], OPENAI_BP),
        bp_row("turn2", 1, [1, 2, 3, 4, 5], ends + [1900, 2500], [], OPENAI_BP),
    ])
    assert out["turn1"] == (0, 1800, 0)  # implicit breakpoint writes (1.25x) the whole prompt
    assert out["turn2"] == (1800, 700, 0)


def test_partitioning_by_first_block_is_exact() -> None:
    """Running every request in one partition or in hash buckets of the first block gives the same
    result: requests in different buckets can never share an entry."""
    rng = random.Random(3)
    prefixes = [[rng.getrandbits(63) for _ in range(24)] for _ in range(6)]
    rows = []
    for i in range(400):
        p = rng.choice(prefixes)
        cut = rng.randint(1, 24)
        rows.append(auto_row(f"r{i}", i * 0.37, p[:cut] + [rng.getrandbits(63) for _ in range(rng.randint(0, 5))]))
    whole = sim(rows)
    parted: dict[str, tuple[int, int, int]] = {}
    for bucket in range(4):
        parted.update(sim([r for r in rows if r.token_hashes[0] % 4 == bucket]))
    assert parted == whole
    assert sum(v[0] for v in whole.values()) > 0


# --- tokens --------------------------------------------------------------------------------------


def test_blocks_segments_and_memoized_counts() -> None:
    messages = [msg("user", "first question"), msg("assistant", "first answer"), msg("user", "second question")]
    blocks = request_blocks("You are helpful.", messages, '[{"name":"f","description":"d","parameters":{}}]', "openai")
    assert [b.segment for b in blocks] == ["tools", "system", "history", "history", "new_turn"]
    assert blocks[0].text.startswith('[{"type":"function"')  # OpenAI wire shape of the tool
    memo = TokenMemo()
    t1 = tokenize_request(memo, "gpt-4o", "You are helpful.", messages, None)
    t2 = tokenize_request(memo, "gpt-4o", "You are helpful.", messages, None)
    assert t1.total == t2.total == count_request_naive("gpt-4o", "You are helpful.", messages, None)
    assert memo.hits >= memo.misses  # the second request tokenized nothing new
    enc = get_encoding("o200k_base")
    content = sum(len(enc.encode_ordinary(t)) for t in ("You are helpful.", "first question", "first answer",
                                                         "second question"))
    assert t1.total == content + 4 * 3 + 3  # + role framing per message + reply priming
    segs = t1.segment_tokens()
    assert segs["history"] == len(enc.encode_ordinary("first question")) + len(enc.encode_ordinary("first answer")) + 6


def test_system_message_in_messages_is_the_system_segment() -> None:
    a = request_blocks("Rules.", [msg("user", "hi")], None)
    b = request_blocks(None, [msg("system", "Rules."), msg("user", "hi")], None)
    assert [x.segment for x in b] == ["system", "new_turn"]
    assert [x.key for x in a] == [x.key for x in b]  # the same cache content either way


def test_token_memo_is_bounded() -> None:
    memo = TokenMemo(max_tokens=50)
    for i in range(40):
        memo.tokens("o200k_base", f"text number {i} " * 3)
    assert sum(len(a) for a in memo._arrays.values()) <= 50 + 20


def test_dynamic_span_kinds() -> None:
    text = ("Now 2026-09-12T10:00:01Z, day 2026-09-12, at 10:30 PM, req 3fa85f64-5717-4562-b3fc-2c963f66afa6, "
            "user user_1234, epoch 1760000000, turn 42.")
    kinds = {text[s.start:s.end]: s.kind for s in find_spans(text)}
    assert kinds == {"2026-09-12T10:00:01Z": "timestamp", "2026-09-12": "date", "10:30 PM": "time",
                     "3fa85f64-5717-4562-b3fc-2c963f66afa6": "uuid", "user_1234": "id",
                     "1760000000": "timestamp", "42": "counter"}
    assert find_spans("no digits at all") == []


def _regex_windows(text: str) -> list[tuple[int, int]]:
    """The windows as the one-regex path finds them (what `_digit_groups` does below its numpy length)."""
    return [m.span() for m in dynamic_spans._DIGIT_GROUPS.finditer(text)]


@pytest.mark.parametrize("text", [
    "x" * 600,  # no digit
    "7" * 600,  # one run, the whole text
    "a" * 600 + "1",  # a run at the very end
    "1" + " " * 80 + "2" + "z" * 600,  # 80 characters apart: one window
    "1" + " " * 81 + "2" + "z" * 600,  # 81 apart: two
    "9" + "y" * 700 + "9" + " " * 79 + "12" + "w" * 100 + "3",
    "catalogue SKU-1042 at 19.99, ships 2026-09-12 10:00; " * 40,  # the bench's long prompts
])
def test_digit_windows_numpy_path_equals_regex(text: str) -> None:
    assert len(text) >= dynamic_spans._NUMPY_MIN_CHARS and text.isascii()
    assert dynamic_spans._digit_groups(text) == _regex_windows(text)


def test_long_non_ascii_text_keeps_unicode_digits() -> None:
    # `\d` matches Arabic-Indic digits: a non-ASCII text takes the regex path, windows included
    text = "é" + "q" * 600 + " ٣ " + "r" * 200 + " 42"
    assert dynamic_spans._digit_groups(text) == _regex_windows(text) == [(602, 603), (805, 807)]
    assert [text[s.start:s.end] for s in find_spans(text)] == ["٣", "42"]



def test_spans_handed_to_the_prepare_pass_are_the_ones_it_would_find(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dynamic-span task's spans (`SpanTable`) reach the prepare pass's memo unchanged, every
    kind and a non-ASCII text's character offsets included; only blocks whose masked text varies
    travel, and a block that travelled is never searched again."""
    texts = ["Now 2026-09-12T10:00:01Z, day 2026-09-12, at 10:30 PM, req 3fa85f64-5717-4562-b3fc-2c963f66afa6, "
             "user user_1234, epoch 1760000000, turn 42.", "é ünïcode ٣ first, then 2026-10-01 and sess-9f2c", "none"]
    blocks = [Block(seg, t, i, "system" if seg == "system" else "user", -1)
              for i, (seg, t) in enumerate(zip(("system", "history", "system"), texts, strict=True))]
    found = cache.SpanMemo()
    expected = [found.masked(b) for b in blocks]
    assert expected[2] is None and all(e is not None and e[0] for e in expected[:2])
    table = cache.SpanTable.of(found)
    assert table.table.num_rows == 2
    varies = pa.array([expected[0][2]], pa.uint64())  # only the first block's masked text varies
    handed = table.where_masked_in(varies).spans()
    assert handed == {("system", 0): expected[0][0]}

    searched: list[str] = []
    real = dynamic_spans.find_spans
    monkeypatch.setattr(dynamic_spans, "find_spans", lambda text: searched.append(text) or real(text))
    again = cache.SpanMemo(known=table.spans())
    assert [again.masked(b) for b in blocks] == expected
    assert searched == [texts[2]]  # the block without spans was never in the table
# --- planted stores, end to end ----------------------------------------------------------------------

T = datetime(2026, 9, 1, 9, tzinfo=UTC)
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa"]


def long_text(seed: int, n_words: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(n_words)) + "."


def openai_usage(total: int) -> dict:
    # No cache fields: these rows test the documented rules, which calibration keeps without evidence
    # (reported zero reads on a shared 1,500-word prefix would rightly calibrate them away).
    return {"in_uncached": total, "in_cache_read": None, "out_total": 20}


def planted_rows() -> list[dict]:
    stable = long_text(1, 1500)
    constant_dated = "Knowledge cutoff: 2024-06-01. " + long_text(2, 1500)
    rows = []
    enc = get_encoding("o200k_base")
    for i in range(30):
        ts = T + timedelta(minutes=i)
        # breaker: a timestamp BEFORE 1,500 stable words
        system = f"Current time: {ts.isoformat()}\n\n{stable}"
        user = f"question {i}: " + long_text(100 + i, 20)
        total = len(enc.encode_ordinary(system)) + len(enc.encode_ordinary(user)) + 9
        rows.append(row(request_id=f"brk{i}", ts=ts, provider="openai", model="gpt-4o", system_text=system,
                        messages=[msg("user", user)], status_code=200, **openai_usage(total)))
        # a constant date in an otherwise shared prompt is not a breaker
        total2 = len(enc.encode_ordinary(constant_dated)) + len(enc.encode_ordinary(user)) + 9
        rows.append(row(request_id=f"const{i}", ts=ts + timedelta(seconds=20), provider="openai", model="gpt-4o",
                        system_text=constant_dated, messages=[msg("user", user)], status_code=200,
                        **openai_usage(total2)))
        # Anthropic with a cache_control marker on the system prompt
        rows.append(row(request_id=f"ant{i}", ts=ts + timedelta(seconds=40), provider="anthropic",
                        model="claude-sonnet-4-5", system_text=stable, messages=[msg("user", user)],
                        cache_breakpoints=[{"segment": "system", "index": 0, "block": None, "ttl": "5m"}],
                        status_code=200, in_uncached=40, in_cache_read=0 if i == 0 else 1600,
                        in_cache_write_5m=1600 if i == 0 else 0, out_total=20))
    # Anthropic rows whose log keeps no cache_control markers but whose usage shows caching
    for i in range(3):
        rows.append(row(request_id=f"nomark{i}", ts=T + timedelta(minutes=40 + i), provider="anthropic",
                        model="claude-sonnet-4-5", system_text=constant_dated, messages=[msg("user", "hello")],
                        status_code=200, in_uncached=10, in_cache_read=0 if i == 0 else 1700,
                        in_cache_write_5m=1700 if i == 0 else 0, out_total=5))
    # a rate-limited call processed no prompt: not simulated
    rows.append(row(request_id="err", ts=T + timedelta(minutes=31), provider="openai", model="gpt-4o",
                    system_text=stable, messages=[msg("user", "x")], status_code=429, error_type="rate_limit_exceeded",
                    usage_missing=True))
    return rows


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    wd = tmp_path_factory.mktemp("planted_cache")
    write_store(wd, planted_rows())
    out = wd / "audit"
    out.mkdir()
    labels = pa.table({"request_id": [f"brk{i}" for i in range(30)] + [f"ant{i}" for i in range(30)],
                       "task_type": ["qa"] * 30 + ["email"] * 30})
    pq.write_table(labels, out / "request_labels.parquet")
    cost.run(wd, out, {})
    return out, cache.run(wd, out, {})


def test_planted_shares(planted: tuple[Path, dict]) -> None:
    out, section = planted
    rows = {r["request_id"]: r for r in pq.read_table(out / "cache_requests.parquet").to_pylist()}
    # Breaker: nothing shared as logged (the first tokens differ), the stable text once moved.
    assert all(rows[f"brk{i}"]["as_logged_read"] == 0 for i in range(30))
    assert all(rows[f"brk{i}"]["ideal_read"] >= 1408 for i in range(1, 30))
    # Constant date: cached as logged from the second request on (one minute apart, TTL 5 min).
    assert rows["const0"]["as_logged_read"] == 0
    assert all(rows[f"const{i}"]["as_logged_read"] >= 1408 for i in range(1, 30))
    assert all(rows[f"const{i}"]["dynamic_spans"] == 0 for i in range(30))
    # Anthropic: write once, then reads of the system prompt (calibrated to the reported usage).
    assert rows["ant0"]["as_logged_read"] == 0 and rows["ant0"]["as_logged_write_5m"] > 1400
    assert all(rows[f"ant{i}"]["as_logged_read"] == pytest.approx(1600, abs=20) for i in range(1, 30))
    assert rows["err"]["simulated"] is False and rows["err"]["skip_reason"] == "failed_call"
    assert [rows[f"nomark{i}"]["bp_source"] for i in range(3)] == ["inferred"] * 3
    assert rows["nomark0"]["as_logged_write_5m"] > 1600 and rows["nomark2"]["as_logged_read"] > 1600
    flagged = section["prefix_breakers"]
    assert [(b["task_type"], b["breaker_kind"], b["breaker_segment"]) for b in flagged] == [("qa", "timestamp", "system")]
    assert flagged[0]["median_divergence_offset_tokens"] < 10
    assert flagged[0]["tokens_saved"] > 29 * 1400 and flagged[0]["usd_saved"] > 0
    tasks = {t["task_type"]: t for t in section["by_task_type"]}
    assert set(tasks) == {"qa", "email", "unlabeled"}  # labels LEFT JOINed, the rest unlabeled
    assert tasks["email"]["reported_cached_share"] == pytest.approx(29 * 1600 / (29 * 1640 + 1640), abs=1e-4)


def test_planted_tables_and_summary(planted: tuple[Path, dict]) -> None:
    out, section = planted
    for name in ("cache_requests", "cache_by_model", "cache_by_task_type", "cache_by_day", "cache_prefix_breakers",
                 "cache_tokens_by_model"):
        assert (out / f"{name}.parquet").is_file(), name
    assert not (out / ".cache_work").exists()  # work files are removed
    assert section["simulated_requests"] == 93 and section["not_simulated"] == {"failed_call": 1}
    assert section["caveats"]["breakpoints_inferred_requests"] == 3
    enc = {e["model"]: e for e in section["tokens"]["encodings"]}
    assert enc["claude-sonnet-4-5"]["exact"] is False and "approximated with o200k_base" in enc["claude-sonnet-4-5"]["note"]
    assert enc["gpt-4o"]["exact"] is True
    assert "prefix breakers: qa (timestamp)" in section["headline"]
    p = section["projections_usd_per_month"]
    assert p["api_ideal_caching"] < p["api_as_logged"] <= p["api_without_caching"]


def test_planted_breaker_without_task_labels(planted: tuple[Path, dict], tmp_path: Path) -> None:
    """No request_labels.parquet (audit.tasks did not run): everything is `unlabeled` and the
    breaker is still flagged on its saving alone."""
    wd = planted[0].parent
    out = tmp_path / "audit"
    out.mkdir()
    cost.run(wd, out, {})
    section = cache.run(wd, out, {})
    assert [t["task_type"] for t in section["by_task_type"]] == ["unlabeled"]
    assert [(b["task_type"], b["breaker_kind"]) for b in section["prefix_breakers"]] == [("unlabeled", "timestamp")]


def test_simulation_sorted_in_slices_is_identical(planted: tuple[Path, dict], tmp_path: Path) -> None:
    """The simulation's input sorted in slices of hash buckets (`rows_per_sort`, memory) gives the
    same rows in the same order, and the same simulated reads and writes, as one sort."""
    wd = planted[0].parent
    whole = cache.simulate_cache(wd, work_dir=tmp_path / "whole")
    sliced = cache.simulate_cache(wd, config={"audit": {"cache": {"rows_per_sort": 1}}}, work_dir=tmp_path / "sliced")
    for scenario, path in whole.results.items():
        assert path.read_bytes() == sliced.results[scenario].read_bytes(), scenario
    con = duckdb.connect()
    con.execute(f"CREATE VIEW prepared AS SELECT * FROM read_parquet({[str(p) for p in whole.prepared]})")
    cfg = cache.cache_config({"audit": {"cache": {"rows_per_sort": 1}}})
    one = pa.Table.from_batches(cache.simulation_input(con, "ideal", dataclasses.replace(cfg, rows_per_sort=10**9),
                                                       whole.simulated))
    batches = list(cache.simulation_input(con, "ideal", cfg, whole.simulated))
    assert pa.Table.from_batches(batches, schema=one.schema).equals(one)
    # 93 slices of 3 buckets each: the planted prompts' partitions fall into more than one of them
    assert whole.simulated == 93 and len(set(one.column("part").to_pylist())) > 1
    assert len([b for b in batches if b.num_rows]) > 1


def _sim_rows(path: Path) -> list[tuple]:
    return duckdb.sql(f"SELECT * FROM read_parquet('{path}') ORDER BY request_id").fetchall()


def _simulated_store(rows: list[dict], tmp_path: Path) -> tuple[cache.CacheSimRun, duckdb.DuckDBPyConnection]:
    """The cache simulation of a planted store, and a connection with its `prepared` rows."""
    wd = tmp_path / "store"
    write_store(wd, rows)
    run = cache.simulate_cache(wd, work_dir=tmp_path / "run")
    con = duckdb.connect()
    con.execute(f"CREATE VIEW prepared AS SELECT * FROM read_parquet({[str(p) for p in run.prepared]})")
    return run, con


def _every_row(run: cache.CacheSimRun, con: duckdb.DuckDBPyConnection, scenario: str, tmp_path: Path) -> Path:
    """`scenario` simulated over every row (what a scenario that re-simulates some rows must equal)."""
    rules_of = cache.RulesOf(PRICES, run.calibration.rules if run.calibration else None)
    factors = {s: f for s, f in cache.query(con, "cache_scope_factors").fetchall()}
    path = tmp_path / f"every_row_{scenario}.parquet"
    with LocalExecutor(1) as executor:
        cache._simulate_scenario(con, scenario, cache.cache_config({}), rules_of, factors, {scenario: path}, executor,
                                 run.simulated)
    return path


def _shared_prompt_rows(n: int) -> list[dict]:
    """n Anthropic calls sharing a long system prompt without cache_control, beside n OpenAI calls
    sharing it (auto-prefix), a minute apart: ant0.., oai0.."""
    stable = long_text(3, 1500)
    rows = []
    for i in range(n):
        ts = T + timedelta(minutes=i)
        rows.append(row(request_id=f"ant{i}", ts=ts, provider="anthropic", model="claude-sonnet-4-5",
                        system_text=stable, messages=[msg("user", f"question {i}")], status_code=200,
                        in_uncached=2100, out_total=10))
        rows.append(row(request_id=f"oai{i}", ts=ts, provider="openai", model="gpt-4o", system_text=stable,
                        messages=[msg("user", f"question {i}")], status_code=200, **openai_usage(2100)))
    return rows


def test_ideal_bp_replays_only_breakpoint_rows_in_the_as_logged_pass(tmp_path: Path) -> None:
    """The ideal-breakpoints scenario comes from the as-logged pass: the rows cached at breakpoints
    replayed with the ideal breakpoints, every other row's as-logged result. The same rows as
    simulating ideal_bp over every request. Planted: Anthropic calls sharing a long system prompt
    without cache_control (as logged they read nothing, with the ideal breakpoints all but the first
    read it) beside OpenAI calls sharing one (auto-prefix: they read it in every scenario)."""
    run, con = _simulated_store(_shared_prompt_rows(6), tmp_path)
    assert _sim_rows(run.results["ideal_bp"]) == _sim_rows(_every_row(run, con, "ideal_bp", tmp_path))
    logged = {r[0]: r[1:] for r in _sim_rows(run.results["as_logged"])}
    ideal_bp = {r[0]: r[1:] for r in _sim_rows(run.results["ideal_bp"])}
    assert [logged[f"ant{i}"][0] for i in range(6)] == [0] * 6
    assert ideal_bp["ant0"][0] == 0 and all(ideal_bp[f"ant{i}"][0] > 1024 for i in range(1, 6))
    assert logged["oai0"][0] == 0 and all(ideal_bp[f"oai{i}"] == logged[f"oai{i}"] != (0, 0, 0) for i in range(1, 6))
    # one pass writes both files, in the same (input) order
    assert (pq.read_table(run.results["ideal_bp"]).column("request_id").to_pylist()
            == pq.read_table(run.results["as_logged"]).column("request_id").to_pylist())
    assert not list((tmp_path / "run").glob("sim_ideal_bp_*"))


def test_ideal_resimulates_only_scopes_with_a_dynamic_span(tmp_path: Path) -> None:
    """The ideal-ordering scenario re-simulates the scopes in which some request has a dynamic span
    to move and takes every other row's ideal-breakpoints result: the same rows as re-simulating
    every request. Planted: GPT-4o calls whose shared system prompt starts with the time of the
    call (as logged they read nothing; with the time moved all but the first read the prompt),
    beside Claude calls with a stable prompt and no cache_control, and GPT-4.1 calls with a stable
    prompt: the Claude rows' ideal results (reads at the ideal breakpoint) and the GPT-4.1 rows'
    (auto-prefix reads) come from ideal_bp."""
    stable = long_text(5, 1500)
    rows = []
    for i in range(6):
        ts = T + timedelta(minutes=i)
        rows.append(row(request_id=f"dyn{i}", ts=ts, provider="openai", model="gpt-4o",
                        system_text=f"Current time: {ts:%Y-%m-%dT%H:%M:%SZ}. {stable}",
                        messages=[msg("user", f"question {i}")], status_code=200, **openai_usage(2100)))
        rows.append(row(request_id=f"ant{i}", ts=ts, provider="anthropic", model="claude-sonnet-4-5",
                        system_text=stable, messages=[msg("user", f"question {i}")], status_code=200,
                        in_uncached=2100, out_total=10))
        rows.append(row(request_id=f"oai{i}", ts=ts, provider="openai", model="gpt-4.1", system_text=stable,
                        messages=[msg("user", f"question {i}")], status_code=200, **openai_usage(2100)))
    run, con = _simulated_store(rows, tmp_path)
    assert [k for (k,) in cache.query(con, "cache_ideal_rule_keys").fetchall()] == ["openai|gpt-4o\x1fopenai_auto"]
    assert _sim_rows(run.results["ideal"]) == _sim_rows(_every_row(run, con, "ideal", tmp_path))
    ideal_bp = {r[0]: r[1:] for r in _sim_rows(run.results["ideal_bp"])}
    ideal = {r[0]: r[1:] for r in _sim_rows(run.results["ideal"])}
    assert [ideal_bp[f"dyn{i}"][0] for i in range(6)] == [0] * 6
    assert ideal["dyn0"][0] == 0 and all(ideal[f"dyn{i}"][0] >= 1024 for i in range(1, 6))
    assert all(ideal[f"{m}{i}"] == ideal_bp[f"{m}{i}"] for m in ("ant", "oai") for i in range(6))
    assert all(ideal[f"ant{i}"][0] > 1024 and ideal[f"oai{i}"][0] >= 1024 for i in range(1, 6))
    assert not list((tmp_path / "run").glob("sim_*_resimulated*"))


def test_ideal_bp_without_breakpoint_rows_is_the_as_logged_run(planted: tuple[Path, dict], tmp_path: Path) -> None:
    """No rule set caches at breakpoints: nothing is re-simulated, every row keeps its as-logged result."""
    only_openai = [r for r in planted_rows() if r["provider"] == "openai"]
    wd = tmp_path / "store"
    write_store(wd, only_openai)
    run = cache.simulate_cache(wd, work_dir=tmp_path / "run")
    assert _sim_rows(run.results["ideal_bp"]) == _sim_rows(run.results["as_logged"])
    assert len(_sim_rows(run.results["ideal_bp"])) == run.simulated > 0


def test_memoized_and_naive_tokenization_agree(planted: tuple[Path, dict]) -> None:
    wd = planted[0].parent
    memo = tokenize_store(wd, memoize=True)
    naive = tokenize_store(wd, memoize=False)
    assert memo.tokens == naive.tokens > 0 and memo.requests == naive.requests == 94
    assert memo.memo["hits"] > memo.memo["misses"]  # the stable system text is tokenized once


# --- the sample's ground truth --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def by_truth_task(sample_cost_cache_traffic: tuple[Path, dict], sample_logs_dir: Path) -> dict[str, dict]:
    """Simulated and reported figures per TRUTH task type (joined on request_id), so these checks do not
    depend on how audit.tasks names its clusters."""
    out, _ = sample_cost_cache_traffic
    con = duckdb.connect()
    con.execute(f"CREATE VIEW t AS SELECT * FROM read_json_auto('{sample_logs_dir / 'truth_requests.jsonl.gz'}')")
    con.execute(f"CREATE VIEW c AS SELECT * FROM read_parquet('{out / 'cache_requests.parquet'}')")
    rel = con.sql("""
        SELECT t.task_type, count(*) AS n, count(c.request_id) AS matched,
               sum(t.input_tokens) AS truth_input, sum(c.input_tokens) FILTER (WHERE c.simulated) AS input,
               sum(t.cacheable_as_logged) AS truth_as_logged, sum(t.cacheable_ideal) AS truth_ideal,
               sum(t.cached_tokens) AS truth_reported,
               sum(c.as_logged_read) AS as_logged, sum(c.ideal_bp_read) AS ideal_bp, sum(c.ideal_read) AS ideal,
               sum(c.reported_read) AS reported,
               count(*) FILTER (WHERE c.breaker_kind IS NOT NULL) AS with_breaker,
               mode(c.breaker_kind) AS breaker_kind, median(c.breaker_stable_after) AS stable_after,
               median(c.breaker_offset) AS offset
        FROM t LEFT JOIN c USING (request_id) GROUP BY t.task_type""")
    return {r[0]: dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()}


def test_sample_every_request_accounted(by_truth_task: dict[str, dict], sample_truth: dict) -> None:
    for task, r in by_truth_task.items():
        assert r["matched"] == r["n"], task
        assert r["input"] == r["truth_input"], task  # errors have no input; the rest is the reported usage


def test_sample_cacheable_shares_per_task(by_truth_task: dict[str, dict], sample_truth: dict) -> None:
    # Tolerance 0.01 (one percentage point of the task's input tokens). The simulation works on
    # o200k_base tokens, the generator on its own count, which agree to ~0.1% on this text; the
    # difference only matters when a shared prefix ends within a few tokens of a 128-token step
    # (OpenAI) or through the calibration of Claude's approximated positions. Measured: at most
    # 0.15 points (support_chat, whose history holds tool calls the generator counts a little
    # differently). A rule error (TTL, minimum, breakpoint placement) moves a task by 5-70 points.
    for task, r in by_truth_task.items():
        share = sample_truth["cache"]["per_task"][task]
        assert r["as_logged"] / r["truth_input"] == pytest.approx(share["as_logged_share"], abs=0.01), task
        assert r["ideal_bp"] / r["truth_input"] == pytest.approx(share["ideal_share"], abs=0.01), task
        assert r["ideal"] >= r["ideal_bp"] - 0.002 * r["truth_input"], task


def test_sample_overall_shares_and_reported(sample_cost_cache_traffic: tuple[Path, dict], sample_truth: dict) -> None:
    _, sections = sample_cost_cache_traffic
    c, tc = sections["cache"], sample_truth["cache"]
    # Same 0.01 tolerance as per task (the overall share is their token-weighted mean); measured 0.0003.
    assert c["overall"]["as_logged_share"] == pytest.approx(tc["overall_as_logged_share"], abs=0.01)
    assert c["overall"]["ideal_bp_share"] == pytest.approx(tc["overall_ideal_share"], abs=0.01)
    # Reported cached tokens are read from the logs, so they must match exactly.
    assert c["cacheable_tokens"]["reported_cache_read"] == tc["reported_cached_tokens"]
    assert c["cacheable_tokens"]["reported_cache_write"] == tc["reported_cache_write_tokens"]
    assert c["overall"]["reported_cached_share"] == pytest.approx(
        tc["reported_cached_tokens"] / sample_truth["tokens"]["input_total"], abs=1e-4)
    # Anthropic writes as simulated vs as billed: same breakpoint, same TTL -> within 1%.
    sim_w = c["cacheable_tokens"]["simulated_cache_write_as_logged"]
    assert sim_w == pytest.approx(tc["reported_cache_write_tokens"], rel=0.01)
    # OpenAI reports less than is cacheable (a request reaches one cache machine): the gap is >= 0.
    openai = [m for m in c["by_model"] if m["rules"] == "openai_auto"]
    assert all(m["gap_simulated_minus_reported"] >= -0.002 for m in openai)


def test_sample_prefix_breakers(by_truth_task: dict[str, dict], sample_truth: dict,
                                sample_cost_cache_traffic: tuple[Path, dict]) -> None:
    _, sections = sample_cost_cache_traffic
    for task, truth in sample_truth["task_types"].items():
        r = by_truth_task[task]
        breaker = truth["prefix_breaker"]
        saved_share = (r["ideal"] - r["ideal_bp"]) / r["truth_input"]
        if breaker:
            assert r["with_breaker"] >= 0.9 * (r["n"] - 20), task  # all but failed calls
            assert r["breaker_kind"] == breaker["kind"], task
            # Stable text after the span: tiktoken vs the generator's count, 2%.
            assert r["stable_after"] == pytest.approx(breaker["stable_tokens_after"], rel=0.02), task
            assert r["offset"] < 16, task  # the span opens the system prompt
            assert saved_share > 0.3, task  # moving it makes most of the prompt cacheable
        else:
            assert saved_share < 0.02, task  # nothing to gain elsewhere
    # The summary flags exactly the truth's prefix-breaker tasks (labels are the truth task types).
    flagged = {(b["task_type"], b["breaker_kind"]) for b in sections["cache"]["prefix_breakers"]}
    assert flagged == {(task, t["prefix_breaker"]["kind"]) for task, t in sample_truth["task_types"].items()
                       if t["prefix_breaker"]}
    assert all(b["usd_saved"] > 0 and b["usd_saved_per_month"] > 0 for b in sections["cache"]["prefix_breakers"])


def test_sample_per_task_table(sample_cost_cache_traffic: tuple[Path, dict], sample_truth: dict) -> None:
    """cache_by_task_type.parquet, as the report reads it, against the truth's per-task shares."""
    out, _ = sample_cost_cache_traffic
    rows = {r["task_type"]: r for r in pq.read_table(out / "cache_by_task_type.parquet").to_pylist()}
    # The two bad-lines records ingest keeps (not calls in the truth) have no label.
    assert set(rows) - {"unlabeled"} == set(sample_truth["task_types"])
    assert rows.get("unlabeled", {"requests": 0})["requests"] <= 2
    for task, truth in sample_truth["cache"]["per_task"].items():
        # Same 0.01 tolerance as test_sample_cacheable_shares_per_task; the reported share is read
        # from the logs (4e-4: failed calls carry no usage in either).
        assert rows[task]["as_logged_share"] == pytest.approx(truth["as_logged_share"], abs=0.01), task
        assert rows[task]["ideal_bp_share"] == pytest.approx(truth["ideal_share"], abs=0.01), task
        assert rows[task]["reported_cached_share"] == pytest.approx(truth["reported_cached_share"], abs=4e-4), task
        assert rows[task]["spend_usd"] == pytest.approx(sample_truth["task_types"][task]["spend_usd"], rel=1e-5), task


def test_sample_token_estimate_vs_reported(sample_cost_cache_traffic: tuple[Path, dict]) -> None:
    _, sections = sample_cost_cache_traffic
    rows = sections["cache"]["tokens"]["estimate_vs_reported"]
    for r in rows:
        if r["requests_with_usage"] >= 50:
            # The generator's text is built from words that are one o200k token each, so the estimate
            # must land within 2% of the reported input; a missing segment would be off by 10-80%.
            assert r["median_abs_error"] < 0.02, r["model"]
            assert r["calibration_factor"] == pytest.approx(1.0, abs=0.02), r["model"]
    shares = sections["cache"]["tokens"]["segment_shares"]
    assert sum(shares.values()) == pytest.approx(1.0, abs=0.01)
    assert shares["system"] > 0.5  # the sample's prompts are dominated by long system prompts


def test_real_logs_simulated_vs_reported(real_logs: Path, tmp_path: Path) -> None:
    from audit import traffic
    from pipeline.ingest import ingest

    ingest([str(real_logs)], tmp_path, progress=False)
    out = tmp_path / "audit"
    out.mkdir()
    cost.run(tmp_path, out, {})
    section = cache.run(tmp_path, out, {})
    traffic.run(tmp_path, out, {})
    rows = pq.read_table(out / "cache_requests.parquet").to_pylist()
    with_cache_fields = [r for r in rows if r["has_cache_fields"]]
    assert with_cache_fields, "the real logs carry cached-token fields"
    assert section["overall"]["reported_cached_share"] is not None
    assert section["cacheable_tokens"]["reported_cache_read"] > 0
    # Where both exist, the simulation and the report sit side by side per model.
    reported_models = [m for m in section["by_model"] if m["reported_cached_share"] is not None]
    assert reported_models
    assert all(0.0 <= (m["as_logged_share"] or 0.0) <= 1.0 for m in section["by_model"])
    assert section["simulated_requests"] > 0
    # Agent transcripts (Claude Code, Codex) log neither the system prompt and tools nor the
    # cache_control markers, and Codex redacts its text; the usage still shows heavy caching. With
    # positions scaled by the calibration factor and the breakpoint inferred on the last message,
    # the simulation must land near the reported share for every model with enough such traffic:
    # measured 0.87 vs 0.95 (Claude Code, Sonnet 4), 0.77 vs 0.97 (Opus 4.5), 0.84 vs 0.91 (Codex).
    # 0.25 is loose on purpose: these logs leave real unknowns (hidden prefix, breakpoint placement).
    by_model: dict[str, list[dict]] = {}
    for r in with_cache_fields:
        if r["simulated"] and r["input_tokens"]:
            by_model.setdefault(r["model"], []).append(r)
    checked = 0
    for model, rs in by_model.items():
        inp = sum(r["input_tokens"] for r in rs)
        reported = sum(r["reported_read"] for r in rs) / inp
        if len(rs) >= 30 and reported > 0.5:
            checked += 1
            assert sum(r["as_logged_read"] for r in rs) / inp == pytest.approx(reported, abs=0.25), model
    assert checked >= 1
    assert section["caveats"]["prompt_incomplete_requests"] > 0


def test_breakpoint_rows_keep_only_their_first_token_hash(tmp_path: Path) -> None:
    """Breakpoint caching reads block hashes: its rows carry only the first token hash (their
    partition key), the auto-prefix rows every one. A calibration never moves a row to another kind
    of rules (which would need the hashes dropped): a scope calibrated to another kind keeps the
    row's documented rules, one of the same kind replaces them."""
    run, con = _simulated_store(_shared_prompt_rows(3), tmp_path)
    got = {rid: (n, ends[-1]) for rid, n, ends in
           con.sql("SELECT request_id, len(token_hashes), block_ends FROM prepared").fetchall()}
    assert all(got[f"ant{i}"][0] == 1 for i in range(3)), got
    assert all(got[f"oai{i}"][0] == got[f"oai{i}"][1] // 64 > 20 for i in range(3)), got
    auto = PRICES.rules["openai_auto"]
    breakpoints = dataclasses.replace(PRICES.rules["anthropic"], ttl_minutes=60.0)
    rules_of = cache.RulesOf(PRICES, {"anthropic|claude-sonnet-4-5": auto, "openai|gpt-4o": breakpoints})
    assert rules_of.of("anthropic|claude-sonnet-4-5", "anthropic", 1024).kind == "breakpoints"
    assert rules_of.of("openai|gpt-4o", "openai_auto", 1024).kind == "auto_prefix"
    rules_of = cache.RulesOf(PRICES, {"anthropic|claude-sonnet-4-5": breakpoints})
    assert rules_of.of("anthropic|claude-sonnet-4-5", "anthropic", 1024) is breakpoints
