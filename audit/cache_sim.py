"""The cacheable-prefix simulation over ONE partition of requests, in time order.

This is the heavy part of the cache audit, written as a pure function of its partition so it can
run anywhere (a process pool, Ray, Spark): `simulate_partition(rows)` reads nothing else and keeps
its cache state local. A partition must contain every request that could share a cache entry with
another one in it. Entries are keyed by chained hashes seeded with the cache scope (provider and
model), so two requests can only share an entry when their first hashed block is identical:
partitioning by a hash bucket of that first block (audit/cache.py) is exact, not an approximation.

Two regimes (rule sets are data: audit/prices.toml, formats.md §k):

auto_prefix (OpenAI before GPT-5.6, Gemini implicit, DeepSeek): the provider caches every prefix
  automatically. A request's token sequence is hashed in fixed blocks of B tokens as ROLLING prefix
  hashes h_j = H(h_{j-1}, tokens[jB:(j+1)B]), so h_j identifies the whole prefix of (j+1)B tokens.
  The request reads the longest prefix whose hash is alive (rounded down to the provider's step,
  nothing below the minimum), then re-arms every one of its own prefixes. Each request touches all
  its prefixes together, so if h_j is alive every h_i (i < j) is alive too, and a forward scan that
  stops at the first dead hash finds the longest live prefix.

breakpoints (Anthropic; OpenAI GPT-5.6+ with its implicit breakpoint): entries exist only at
  breakpoint positions. Positions are content-block boundaries with chained block hashes; a
  request reads at its latest breakpoint, or at an earlier boundary at most `lookback_blocks`
  back, whose entry is alive; it writes (and pays the write premium for) everything from the read
  position to each breakpoint at or above the model's minimum, with that breakpoint's TTL.

Complexity: O(sum over requests of (prompt tokens / B + content blocks)) dictionary operations,
i.e. linear in the input tokens, with no comparison between pairs of requests. Memory is the live
entries of the partition (expired ones are pruned every PRUNE_EVERY requests), so it is bounded by
the traffic inside one TTL window, not by the length of the log.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from audit.prices import CacheRules

PRUNE_EVERY = 4096


@dataclass(frozen=True, slots=True)
class SimRow:
    """What the simulation needs of one request (all token positions in estimated tokens)."""

    request_id: str
    ts_ms: int
    rules: CacheRules
    factor: float  # provider tokens per estimated token at prefix positions (1.0 for exact encodings)
    input_tokens: int  # provider input tokens (reported, else calibrated estimate)
    token_hashes: list[int]  # rolling prefix hashes of B-token blocks
    block_ends: list[int]  # cumulative estimated tokens at the end of each content block
    block_hashes: list[int]  # rolling prefix hashes of content blocks
    breakpoints: list[tuple[int, bool]]  # (block index, 1-hour TTL) for this scenario


@dataclass(frozen=True, slots=True)
class SimResult:
    request_id: str
    read: int
    write_5m: int
    write_1h: int


def simulate_partition(rows: Iterable[SimRow], block_tokens: int,
                       rules: CacheRules | None = None) -> Iterator[SimResult]:
    """Simulate the prompt caches of one partition; `rows` must be in time order. `rules`, when
    given, replaces every row's own (the calibration replays one model's rows under candidates)."""
    sim = PartitionSim(block_tokens, rules)
    for row in rows:
        yield sim.step(row)


class PartitionSim:
    """One partition's caches, fed a row at a time in time order (`simulate_partition` feeds a
    whole partition; the as-logged pass feeds two of them in lock step)."""

    def __init__(self, block_tokens: int, rules: CacheRules | None = None) -> None:
        self.block_tokens = block_tokens
        self.rules = rules
        self.auto: dict[int, int] = {}  # prefix hash -> expiry (ms)
        self.marks: dict[int, tuple[int, int]] = {}  # breakpoint prefix hash -> (expiry ms, ttl ms)
        self.n = 0

    def step(self, row: SimRow) -> SimResult:
        if self.n and self.n % PRUNE_EVERY == 0:
            _prune(self.auto, self.marks, row.ts_ms)
        self.n += 1
        row_rules = self.rules or row.rules
        kind = row_rules.kind
        if kind == "auto_prefix":
            return _auto_prefix(row, row_rules, self.auto, self.block_tokens)
        if kind == "breakpoints":
            return _breakpoints(row, row_rules, self.marks)
        return SimResult(row.request_id, 0, 0, 0)


def _prune(auto: dict[int, int], marks: dict[int, tuple[int, int]], now: int) -> None:
    for h in [h for h, exp in auto.items() if exp < now]:
        del auto[h]
    for h in [h for h, (exp, _) in marks.items() if exp < now]:
        del marks[h]


def _auto_prefix(row: SimRow, rules: CacheRules, auto: dict[int, int], block_tokens: int) -> SimResult:
    now = row.ts_ms
    if row.input_tokens < rules.min_tokens:
        # Below the minimum the provider neither reads nor stores the prompt.
        return SimResult(row.request_id, 0, 0, 0)
    live = 0
    for h in row.token_hashes:
        exp = auto.get(h)
        if exp is None or exp < now:
            break
        live += 1
    ttl = int(rules.ttl_minutes * 60_000)
    for h in row.token_hashes:
        auto[h] = now + ttl
    shared = live * block_tokens * row.factor
    step = max(1, rules.step_tokens)
    read = int(shared // step * step)
    if read < rules.min_tokens:
        read = 0  # OpenAI: cached_tokens is 0 or 1024, 1152, 1280, ...
    return SimResult(row.request_id, min(read, row.input_tokens), 0, 0)


def _breakpoints(row: SimRow, rules: CacheRules, marks: dict[int, tuple[int, int]]) -> SimResult:
    now = row.ts_ms
    n_blocks = len(row.block_hashes)
    if not n_blocks:
        return SimResult(row.request_id, 0, 0, 0)
    bps = dict(row.breakpoints)
    if rules.implicit_last:
        bps.setdefault(n_blocks - 1, False)
    # A request carries at most `max_breakpoints`; the provider keeps the latest ones.
    ordered = sorted(b for b in bps if 0 <= b < n_blocks)[-rules.max_breakpoints :]
    if not ordered:
        return SimResult(row.request_id, 0, 0, 0)
    f = row.factor
    hit = -1
    for bp in reversed(ordered):
        lo = max(0, bp - rules.lookback_blocks)
        for b in range(bp, lo - 1, -1):
            entry = marks.get(row.block_hashes[b])
            if entry is not None and entry[0] >= now:
                hit = b
                break
        if hit >= 0:
            break
    read_pos = row.block_ends[hit] if hit >= 0 else 0
    if hit >= 0 and rules.refresh_on_hit:
        _, ttl = marks[row.block_hashes[hit]]
        marks[row.block_hashes[hit]] = (now + ttl, ttl)
    write = [0.0, 0.0]  # 5m, 1h
    prev = read_pos
    for bp in ordered:
        pos = row.block_ends[bp]
        if pos * f < rules.min_tokens:
            continue  # below the model's minimum a breakpoint silently caches nothing
        one_hour = bps[bp]
        ttl = int((rules.ttl_1h_minutes if one_hour else rules.ttl_minutes) * 60_000)
        if pos > prev:
            write[1 if one_hour else 0] += pos - prev
            prev = pos
        h = row.block_hashes[bp]
        old = marks.get(h)
        if old is None or old[0] < now + ttl:
            marks[h] = (now + ttl, ttl)
    read = _scale(read_pos, f)
    w5 = _scale(write[0], f)
    w1 = _scale(write[1], f)
    # Rounding must never bill more input than the request had.
    over = read + w5 + w1 - row.input_tokens
    if over > 0:
        w5 = max(0, w5 - over)
    return SimResult(row.request_id, read, w5, w1)


def _scale(tokens: float, factor: float) -> int:
    return int(math.floor(tokens * factor + 0.5))
