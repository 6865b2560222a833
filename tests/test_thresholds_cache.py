"""Every threshold of the prompt-cache simulation pinned from both sides (audit/cache_sim.py with the
rule sets of audit/prices.toml): TTLs to the millisecond, minimums at exactly the minimum and one
below, the 128-token step, the 20-block lookback, the breakpoint limit, and the calibration factor.

Rows are built by hand (SimRow), so every expected figure is worked out from the planted blocks:
B = 64 estimated tokens per hashed block, `factor` provider tokens per estimated token.
"""

from __future__ import annotations

import dataclasses

import pytest

from audit.cache_sim import PRUNE_EVERY, SimRow, simulate_partition
from audit.prices import load_prices

PRICES = load_prices()
OPENAI = PRICES.rules["openai_auto"]
GEMINI = PRICES.rules["gemini_implicit"]
ANTHROPIC = dataclasses.replace(PRICES.rules["anthropic"], min_tokens=1024)
NONE = PRICES.rules["none"]
B = 64
T0 = 1_788_000_000_000
MIN = 60_000


def auto(rid: str, ms: int, blocks: int | list[int], input_tokens: int | None = None, factor: float = 1.0,
         rules: object = OPENAI) -> SimRow:
    hashes = list(range(1, blocks + 1)) if isinstance(blocks, int) else blocks
    n = input_tokens if input_tokens is not None else int(len(hashes) * B * factor) + 20
    return SimRow(rid, T0 + ms, rules, factor, n, hashes, [], [], [])  # type: ignore[arg-type]


def bp(rid: str, ms: int, hashes: list[int], ends: list[int], bps: list[tuple[int, bool]],
       input_tokens: int | None = None, factor: float = 1.0, rules: object = ANTHROPIC) -> SimRow:
    n = input_tokens if input_tokens is not None else int(ends[-1] * factor) + 50 if ends else 0
    return SimRow(rid, T0 + ms, rules, factor, n, [], ends, hashes, bps)  # type: ignore[arg-type]


def sim(rows: list[SimRow]) -> dict[str, tuple[int, int, int]]:
    out = {r.request_id: (r.read, r.write_5m, r.write_1h) for r in simulate_partition(rows, B)}
    assert list(out) == [r.request_id for r in rows]  # one result per request, in order, under its id
    return out


# --- documented rule values (prices.toml): a change here must be deliberate ----------------------------


def test_rule_values_as_documented() -> None:
    assert (OPENAI.kind, OPENAI.min_tokens, OPENAI.step_tokens, OPENAI.ttl_minutes) == ("auto_prefix", 1024, 128, 5)
    a = PRICES.rules["anthropic"]
    assert (a.kind, a.ttl_minutes, a.ttl_1h_minutes, a.lookback_blocks, a.max_breakpoints) == (
        "breakpoints", 5, 60, 20, 4)
    assert (GEMINI.min_tokens, GEMINI.step_tokens) == (1024, 1)


# --- OpenAI automatic prefix caching ---------------------------------------------------------------------


@pytest.mark.parametrize(("idle_ms", "alive"), [(5 * MIN - 1, True), (5 * MIN, True), (5 * MIN + 1, False)])
def test_auto_ttl_to_the_millisecond(idle_ms: int, alive: bool) -> None:
    out = sim([auto("a", 0, 20), auto("b", idle_ms, 20)])
    assert out["a"] == (0, 0, 0)
    assert out["b"] == ((1280, 0, 0) if alive else (0, 0, 0))


def test_auto_hit_rearms_the_ttl() -> None:
    out = sim([auto("a", 0, 20), auto("b", 5 * MIN, 20), auto("c", 10 * MIN, 20), auto("d", 15 * MIN + 1, 20)])
    assert [out[k][0] for k in "abcd"] == [0, 1280, 1280, 0]


@pytest.mark.parametrize(("shared_blocks", "read"), [
    (15, 0),  # 960 tokens: below the 1,024 minimum
    (16, 1024),  # exactly the minimum
    (17, 1024),  # 1,088 rounds down to the 128-token step
    (18, 1152),  # 1,152 = 1,024 + 128
    (19, 1152),
    (20, 1280),
])
def test_auto_minimum_and_128_token_steps(shared_blocks: int, read: int) -> None:
    out = sim([auto("a", 0, 30), auto("b", MIN, list(range(1, shared_blocks + 1)) + [900, 901])])
    assert out["b"] == (read, 0, 0)


def test_below_minimum_prompt_is_never_stored() -> None:
    """Only the first guard (input below the minimum: not stored) can catch this: the short prompt's
    own estimate is 17 blocks, but the provider counted 1,000 tokens (factor 1000/1088); the next
    request, calibrated 1:1, shares all 17 blocks = 1,088 tokens, above the minimum."""
    out = sim([auto("short", 0, 17, input_tokens=1000, factor=1000 / 1088), auto("next", MIN, 17 + 3)])
    assert out == {"short": (0, 0, 0), "next": (0, 0, 0)}
    # ... while at exactly the minimum it is stored and read.
    out = sim([auto("exact", 0, 17, input_tokens=1024, factor=1024 / 1088), auto("next", MIN, 17 + 3)])
    assert out == {"exact": (0, 0, 0), "next": (1024, 0, 0)}


def test_below_minimum_prompt_never_reads() -> None:
    """A live 1,280-token prefix; the next request was billed 1,000 input tokens (factor 1.1 on its
    17 shared blocks would make 1,196): below the minimum it reads nothing."""
    out = sim([auto("long", 0, 20), auto("short", MIN, 17, input_tokens=1000, factor=1.1)])
    assert out["short"] == (0, 0, 0)
    out = sim([auto("long", 0, 20), auto("short", MIN, 17, input_tokens=1100, factor=1.1)])
    assert out["short"] == (1100, 0, 0)  # 1,196 -> 1,152 at the step, capped at the request's input


def test_auto_factor_scales_shared_tokens() -> None:
    """17 shared blocks = 1,088 estimated tokens; factor 1.25 -> 1,360 provider tokens -> 1,280 (step 128)."""
    out = sim([auto("a", 0, 20), auto("b", MIN, list(range(1, 18)) + [900], factor=1.25, input_tokens=2000)])
    assert out["b"] == (1280, 0, 0)


def test_gemini_step_of_one_token() -> None:
    """Gemini implicit caching has no step: 17 blocks x 64 x 1.02 = 1,109.76 -> 1,109."""
    rows = [auto("a", 0, 20, rules=GEMINI),
            auto("b", MIN, list(range(1, 18)) + [900], factor=1.02, input_tokens=2000, rules=GEMINI)]
    assert sim(rows)["b"] == (1109, 0, 0)


def test_no_caching_provider() -> None:
    out = sim([auto("a", 0, 20, rules=NONE), auto("b", MIN, 20, rules=NONE)])
    assert out == {"a": (0, 0, 0), "b": (0, 0, 0)}


def test_pruning_keeps_entries_alive_to_their_expiry() -> None:
    """Expired entries are pruned every PRUNE_EVERY requests; an entry expiring exactly at the prune
    time is still alive, and pruning never changes a figure."""
    filler = [auto(f"f{i}", 1 + i // 100, [10_000 + i], rules=NONE) for i in range(PRUNE_EVERY - 2)]
    rows = [auto("a", 0, 20), bp("m", 0, [7, 8], [1500, 1600], [(0, False)]), *filler,
            auto("b", 5 * MIN, 20), bp("n", 5 * MIN, [7, 8], [1500, 1600], [(0, False)])]
    assert rows[PRUNE_EVERY].request_id == "b"  # b is the row before which the first prune runs
    out = sim(rows)
    assert out["b"] == (1280, 0, 0)
    assert out["n"] == (1500, 0, 0)


# --- Anthropic breakpoints ---------------------------------------------------------------------------------

HASHES, ENDS = [21, 22, 23], [100, 1500, 1600]  # tools, system, user


@pytest.mark.parametrize(("idle_ms", "alive"), [(5 * MIN - 1, True), (5 * MIN, True), (5 * MIN + 1, False)])
def test_breakpoint_5m_ttl_to_the_millisecond(idle_ms: int, alive: bool) -> None:
    out = sim([bp("a", 0, HASHES, ENDS, [(1, False)]), bp("b", idle_ms, HASHES, ENDS, [(1, False)])])
    assert out["a"] == (0, 1500, 0)
    assert out["b"] == ((1500, 0, 0) if alive else (0, 1500, 0))


@pytest.mark.parametrize(("idle_min", "alive"), [(59, True), (60, True), (60.01, False), (61, False),
                                                 (119, False)])
def test_breakpoint_1h_ttl_both_sides(idle_min: float, alive: bool) -> None:
    """The 1-hour TTL is 60 minutes: reuse at 59-60 min reads, at 61 or 119 min writes again."""
    out = sim([bp("a", 0, HASHES, ENDS, [(1, True)]), bp("b", int(idle_min * MIN), HASHES, ENDS, [(1, True)])])
    assert out["a"] == (0, 0, 1500)
    assert out["b"] == ((1500, 0, 0) if alive else (0, 0, 1500))


def test_expired_entry_is_written_again_and_then_read() -> None:
    out = sim([bp("a", 0, HASHES, ENDS, [(1, False)]), bp("b", 6 * MIN, HASHES, ENDS, [(1, False)]),
               bp("c", 7 * MIN, HASHES, ENDS, [(1, False)])])
    assert [out[k] for k in "abc"] == [(0, 1500, 0), (0, 1500, 0), (1500, 0, 0)]


def test_a_5m_marker_does_not_shorten_a_live_1h_entry() -> None:
    out = sim([bp("a", 0, HASHES, ENDS, [(1, True)]), bp("b", 10 * MIN, HASHES, ENDS, [(1, False)]),
               bp("c", 30 * MIN, HASHES, ENDS, [(1, False)])])
    assert [out[k] for k in "abc"] == [(0, 0, 1500), (1500, 0, 0), (1500, 0, 0)]


@pytest.mark.parametrize(("end", "written"), [(1023, 0), (1024, 1024)])
def test_breakpoint_minimum_both_sides(end: int, written: int) -> None:
    out = sim([bp("a", 0, [1, 2], [end, end + 100], [(0, False)])])
    assert out["a"] == (0, written, 0)


def test_breakpoint_minimum_uses_provider_tokens() -> None:
    """1,000 estimated tokens x factor 1.1 = 1,100 provider tokens: above the minimum, written as 1,100."""
    out = sim([bp("a", 0, [1, 2], [1000, 1100], [(0, False)], factor=1.1),
               bp("b", MIN, [1, 2], [1000, 1100], [(0, False)], factor=1.1)])
    assert out == {"a": (0, 1100, 0), "b": (1100, 0, 0)}


def test_breakpoint_below_minimum_is_skipped_not_the_rest() -> None:
    """A first marker below the minimum caches nothing; a later one above it still writes."""
    out = sim([bp("a", 0, [1, 2, 3], [100, 1500, 1600], [(0, False), (1, False)])])
    assert out["a"] == (0, 1500, 0)


def test_breakpoint_at_block_zero_reads() -> None:
    out = sim([bp("a", 0, [5, 6], [1200, 1300], [(0, False)]), bp("b", MIN, [5, 7], [1200, 1400], [(0, False)])])
    assert out == {"a": (0, 1200, 0), "b": (1200, 0, 0)}


def test_two_writes_of_one_ttl_add_up() -> None:
    out = sim([bp("a", 0, [1, 2, 3], [1500, 3000, 3100], [(0, False), (1, False)])])
    assert out["a"] == (0, 3000, 0)
    out = sim([bp("a", 0, [1, 2, 3], [1100, 3000, 3100], [(0, True), (1, False)])])
    assert out["a"] == (0, 1900, 1100)


def test_lookback_reaches_block_zero_and_every_block() -> None:
    earlier = bp("a", 0, [1, 2, 3], [1100, 1200, 1300], [(0, False), (2, False)])
    # block 0 shared, later blocks differ: the 20-block lookback from block 3 reaches block 0
    out = sim([earlier, bp("b", MIN, [1, 9, 9, 9], [1100, 1200, 1300, 1400], [(3, False)])])
    assert out["b"] == (1100, 300, 0)
    # blocks 0-2 shared: the lookback from block 3 finds block 2 (the adjacent one)
    out = sim([earlier, bp("b", MIN, [1, 2, 3, 9], [1100, 1200, 1300, 1400], [(3, False)])])
    assert out["b"] == (1300, 100, 0)


def test_lookback_hit_refreshes_the_entry() -> None:
    """b reads a's block-2 entry through the lookback (not at one of its own breakpoints): the read
    re-arms it, so c, 8 minutes after a, still reads it."""
    ends = [1100, 1200, 1300, 1400, 1500]
    out = sim([bp("a", 0, [1, 2, 3], ends[:3], [(2, False)]),
               bp("b", 4 * MIN, [1, 2, 3, 40], ends[:4], [(3, False)]),
               bp("c", 8 * MIN, [1, 2, 3, 50, 51], ends, [(4, False)])])
    assert out["b"] == (1300, 100, 0)
    assert out["c"] == (1300, 200, 0)


def test_out_of_range_breakpoints_are_ignored() -> None:
    out = sim([bp("a", 0, [1, 2], [1500, 1600], [(2, False), (-1, False)])])
    assert out["a"] == (0, 0, 0)


def test_no_blocks_or_no_breakpoints() -> None:
    out = sim([bp("empty", 0, [], [], [], input_tokens=0), bp("unmarked", 0, [1, 2], [1500, 1600], [])])
    assert out == {"empty": (0, 0, 0), "unmarked": (0, 0, 0)}


def test_rounding_never_bills_more_than_the_input() -> None:
    """Reads and writes are scaled and rounded separately; their sum is capped at the request's input
    by trimming the 5-minute write."""
    base = bp("w", 0, [1, 2], [1500, 1600], [(0, False)])
    # read 1,500 + 5m write 100 (block 1) against a 1,590-token input: over by 10
    over10 = bp("r", MIN, [1, 2], [1500, 1600], [(0, False), (1, False)], input_tokens=1590)
    assert sim([base, over10])["r"] == (1500, 90, 0)
    over1 = bp("r", MIN, [1, 2], [1500, 1600], [(0, False), (1, False)], input_tokens=1599)
    assert sim([base, over1])["r"] == (1500, 99, 0)
    exact = bp("r", MIN, [1, 2], [1500, 1600], [(0, False), (1, False)], input_tokens=1600)
    assert sim([base, exact])["r"] == (1500, 100, 0)
    under = bp("r", MIN, [1, 2], [1500, 1600], [(0, False), (1, False)], input_tokens=1500)
    assert sim([base, under])["r"] == (1500, 0, 0)  # never negative
    # with a 1-hour write beside it: 1h 1,100 + 5m 400 against 1,490 input -> 5m trimmed to 390
    both = bp("x", 0, [1, 2, 3], [1100, 1500, 1600], [(0, True), (1, False)], input_tokens=1490)
    assert sim([both])["x"] == (0, 390, 1100)


def test_lookback_hit_at_block_zero_refreshes_it() -> None:
    """The same refresh when the entry read through the lookback is block 0."""
    out = sim([bp("a", 0, [1, 2], [1100, 1200], [(0, False)]),
               bp("b", 4 * MIN, [1, 30, 31], [1100, 1200, 1300], [(2, False)]),
               bp("c", 8 * MIN, [1, 40], [1100, 1250], [(1, False)])])
    assert out["b"] == (1100, 200, 0)
    assert out["c"] == (1100, 150, 0)


def test_only_the_latest_four_breakpoints_count() -> None:
    """Five markers on one request: the provider keeps the latest four, so the first writes nothing
    and the write starts at block 0's end only through the second marker."""
    ends = [1100, 1200, 1300, 1400, 1500, 1600]
    out = sim([bp("a", 0, [1, 2, 3, 4, 5, 6], ends, [(0, True), (1, False), (2, False), (3, False), (4, False)])])
    assert out["a"] == (0, 1500, 0)  # no 1-hour write: the block-0 marker was dropped


@pytest.mark.parametrize(("model", "minimum"), [("claude-haiku-4-5", 4096), ("claude-3-5-haiku", 2048),
                                                ("claude-sonnet-4-5", 1024), ("claude-opus-4-5", 4096)])
def test_per_model_minimum_both_sides(model: str, minimum: int) -> None:
    """prices.toml's `cache_min_tokens` overrides the rule set's minimum: a breakpoint one token below
    the model's minimum caches nothing, at the minimum it is written."""
    rules = PRICES.rules_for(PRICES.lookup(model))
    assert rules.min_tokens == minimum
    below = sim([bp("a", 0, [1, 2], [minimum - 1, minimum + 100], [(0, False)], rules=rules)])
    at = sim([bp("a", 0, [1, 2], [minimum, minimum + 100], [(0, False)], rules=rules)])
    assert below["a"] == (0, 0, 0) and at["a"] == (0, minimum, 0)
