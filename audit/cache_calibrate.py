"""Calibrate the caching rules per provider and model from the provider's own reported cache reads.

The rule table (audit/prices.toml) is documentation, and documentation drifts: providers change a
model's minimum cacheable length or its effective TTL by model, region and load. Where requests
carry reported cache fields, the logs are the ground truth for what the provider did, so before any
counterfactual is simulated this step fits, per cache scope (provider + model):

  min_tokens      effective minimum cacheable prompt length
  ttl_minutes     effective lifetime of an entry in minutes of disuse
  refresh_on_hit  whether a read re-arms the entry

from a small grid that contains the documented values. Every candidate replays the as-logged
simulation (audit/cache_sim.py, unchanged) over the scope's requests in time order and is scored
against the reported reads:

  error = sum |simulated read - reported read| / input tokens  +  share of requests whose
          hit/miss (read > 0) disagrees

Direct evidence prunes the grid first: the shortest positive reported read bounds the minimum
from above (a provider never reads less than its minimum), and the idle gaps followed by a read
bound the TTL from below (a read after 40 idle minutes proves the entry lived 40 minutes). The
documented rules stay unless the best candidate's error is lower by more than `calibration_margin`;
among candidates within a hair of the best, the one closest to the documented rules wins.

This is a separate step that calls the simulation; it never touches its inner loop. Its cost is
(grid size) x (the scope's requests, capped at `calibration_max_requests`) simulated requests.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from audit.cache_sim import simulate_partition
from audit.prices import CacheRules, PriceTable
from audit.tables import fetch_dicts, query
from pipeline.executor import Executor, cycle_collector_paused

SCREEN_KEEP = 6  # candidates the early-window screen passes on to the full scoring
TIE = 0.002  # errors this close to the best are equally good; the rules nearest the documented win
# Direct TTL evidence: the k-th longest idle gap before a read, k = max(3, 1% of reads), so one read
# whose writer the log happens to miss cannot rule out every shorter TTL on its own.
GAP_EVIDENCE_MIN_READS = 3
GAP_EVIDENCE_SHARE = 0.01


@dataclass(frozen=True)
class Score:
    error: float  # token error share + hit/miss disagreement share
    token_error: float
    hit_mismatch: float
    simulated_share: float  # simulated reads / input over the scored requests
    reported_share: float


@dataclass
class ScopeCalibration:
    scope: str
    provider: str
    model: str
    status: str  # calibrated | documented_kept | no_cache_fields | not_applicable
    requests: int
    requests_with_cache_fields: int
    requests_used: int = 0
    documented: CacheRules | None = None
    calibrated: CacheRules | None = None
    before: Score | None = None
    after: Score | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    candidates: int = 0
    flag: str | None = None  # likely cause when the calibrated share still misses the reported one

    def as_dict(self) -> dict[str, Any]:
        def rules(r: CacheRules | None) -> dict[str, Any] | None:
            if r is None:
                return None
            return {"rules": r.name, "kind": r.kind, "min_tokens": r.min_tokens, "ttl_minutes": r.ttl_minutes,
                    "refresh_on_hit": r.refresh_on_hit}

        def pct(x: float | None) -> float | None:
            return None if x is None else round(x, 4)

        return {
            "scope": self.scope, "provider": self.provider, "model": self.model, "status": self.status,
            "requests": self.requests, "requests_with_cache_fields": self.requests_with_cache_fields,
            "requests_used": self.requests_used,
            "documented": rules(self.documented), "calibrated": rules(self.calibrated),
            "reported_share": pct(self.after.reported_share if self.after else None),
            "as_logged_share_documented": pct(self.before.simulated_share if self.before else None),
            "as_logged_share_calibrated": pct(self.after.simulated_share if self.after else None),
            "error_documented": pct(self.before.error if self.before else None),
            "error_calibrated": pct(self.after.error if self.after else None),
            "hit_mismatch_documented": pct(self.before.hit_mismatch if self.before else None),
            "hit_mismatch_calibrated": pct(self.after.hit_mismatch if self.after else None),
            "evidence": self.evidence, "candidates_tried": self.candidates, "flag": self.flag,
        }


@dataclass
class Calibration:
    scopes: list[ScopeCalibration]

    @property
    def rules(self) -> dict[str, CacheRules]:
        """scope -> the rules every scenario simulates it with (only where they changed)."""
        return {s.scope: s.calibrated for s in self.scopes
                if s.status == "calibrated" and s.calibrated is not None}

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": "per provider+model grid over minimum cacheable tokens, TTL and refresh-on-hit, replaying "
                      "the as-logged simulation against the provider-reported cache reads (tokens and per-request "
                      "hit/miss); documented rules kept unless beaten",
            "models": [s.as_dict() for s in self.scopes],
            "calibrated_models": sorted(s.model for s in self.scopes if s.status == "calibrated"),
            "flagged_models": sorted(s.model for s in self.scopes if s.flag),
            "documented_without_evidence": sorted(s.model for s in self.scopes if s.status == "no_cache_fields"),
        }


CANDIDATES_PER_TASK = 6  # grid candidates one scoring task replays (tasks never depend on the workers)


def calibrate(con: Any, cfg: Any, prices: PriceTable, factors: dict[str, float],
              executor: Executor | None = None) -> Calibration:
    """Calibrate every scope of the `prepared` view (see module doc); `cfg` is a CacheConfig.

    Scope by scope (the driver holds one scope's rows at a time), the candidates' replays run as
    tasks on `executor` (default: in this process), a few candidates per task, each task replaying
    the same rows: the choice never depends on the executor or the number of workers."""
    from audit.cache import RulesOf

    documented = RulesOf(prices)
    scopes = {s["scope"]: s for s in fetch_dicts(con, "cache_calibration_scopes")}
    out: dict[str, ScopeCalibration] = {}
    for name, s in scopes.items():
        status = "no_cache_fields" if not s["requests_with_cache_fields"] else "not_applicable"
        rules = prices.rules.get(s["rules"])
        out[name] = ScopeCalibration(
            name, s["provider"] or "", s["model"] or "", status, int(s["requests"]),
            int(s["requests_with_cache_fields"]),
            documented=documented.documented(s["rules"], int(s["min_tokens"])) if rules else None,
        )
    reader = query(con, "cache_calibration_input", max_requests=int(cfg.calibration_max_requests)).to_arrow_reader(
        cfg.batch_rows)
    from audit.cache import partition_chunks

    # One table per scope (the input is ordered by scope; a table never splits one).
    for table in partition_chunks(reader, 1, key="scope"):
        _calibrate_scope(out[table.column("scope")[0].as_py()], table, cfg, factors, documented, executor)
    return Calibration(sorted(out.values(), key=lambda c: (-c.requests, c.scope)))


@dataclass
class ScopeReplay:
    """One scope's calibration input, shared by its scoring tasks: the as-logged simulation rows
    (built once per worker process) and the provider-reported reads they are scored against."""

    table: pa.Table
    cfg: Any
    factors: dict[str, float]
    doc: CacheRules
    _built: tuple[list[Any], list[dict[str, Any]], list[int], dict[int, int]] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_built": None}  # workers rebuild the rows from the Arrow table

    def rows(self) -> tuple[list[Any], list[dict[str, Any]], list[int], dict[int, int]]:
        """(simulation rows under the documented rules, the input rows as dicts, the indexes of the
        rows scored against reported reads, their reported reads), in time order."""
        if self._built is None:
            from audit.cache import sim_rows

            # The scalar columns as dicts (the hash lists are only read through the simulation rows).
            rows = self.table.drop_columns(["token_hashes", "block_ends", "block_hashes"]).to_pylist()
            # Inputs and positions do not depend on the rules: built once, the rules swapped per candidate.
            base = sim_rows(self.table, "as_logged", self.cfg, self.doc, self.factors)
            scored = [i for i, r in enumerate(rows) if r["has_cache_fields"] and r["reported_input"] is not None]
            self._built = (base, rows, scored, {i: int(rows[i]["reported_read"] or 0) for i in scored})
        return self._built

    def score(self, rules: CacheRules, n: int | None = None) -> Score:
        """Replay the first n requests (a contiguous window in time order, so the cache dynamics are
        intact) under `rules` and score them against the reported reads."""
        base, _, scored, reported = self.rows()
        n = len(base) if n is None else n
        reads = [res.read for res in simulate_partition(base[:n], self.cfg.block_tokens, rules)]
        idx = [i for i in scored if i < n]
        inp = sum(base[i].input_tokens for i in idx) or 1
        tok_err = sum(abs(reads[i] - reported[i]) for i in idx) / inp
        mismatch = sum((reads[i] > 0) != (reported[i] > 0) for i in idx) / max(1, len(idx))
        return Score(tok_err + mismatch, tok_err, mismatch, sum(reads[i] for i in idx) / inp,
                     sum(reported[i] for i in idx) / inp)


@cycle_collector_paused
def score_task(replay: ScopeReplay, candidates: tuple[tuple[CacheRules, int | None], ...]) -> list[Score]:
    """Task: a few (rules, window) candidates of one scope, replayed and scored."""
    return [replay.score(rules, n) for rules, n in candidates]


def _calibrate_scope(cal: ScopeCalibration, table: pa.Table, cfg: Any, factors: dict[str, float],
                     documented_of: Any, executor: Executor | None) -> None:
    replay = ScopeReplay(table, cfg, factors, documented_of(table.slice(0, 1).to_pylist()[0]))
    doc = replay.doc
    cal.documented = doc
    cal.requests_used = table.num_rows
    if doc.kind not in ("auto_prefix", "breakpoints"):
        cal.status = "not_applicable"
        return
    base, rows, scored, reported = replay.rows()
    evidence = _direct_evidence(rows, base, reported, doc, cfg.block_tokens)
    cal.evidence = evidence

    def scores_of(candidates: list[CacheRules], n: int | None = None) -> dict[CacheRules, Score]:
        todo = [(c, n) for c in candidates]
        if executor is None or len(todo) <= 1:
            return {c: replay.score(c, n) for c in candidates}
        chunks = [tuple(todo[i : i + CANDIDATES_PER_TASK]) for i in range(0, len(todo), CANDIDATES_PER_TASK)]
        got = [s for part in executor.map(score_task, chunks, shared=replay, label="audit.cache.calibrate",
                                          total=len(chunks), show_progress=False) for s in part]
        return dict(zip(candidates, got, strict=True))

    grid = _grid(doc, cfg, evidence)
    cal.candidates = len(grid)
    if len(base) > cfg.calibration_screen_requests and len(grid) > SCREEN_KEEP:
        # Screen the whole grid on an early window, then score the few best (and the documented
        # rules) on every request: the cost is grid x window + a handful x all.
        screen = scores_of(grid, cfg.calibration_screen_requests)
        finalists = sorted(grid, key=lambda c: (screen[c].error, _distance(c, doc)))[:SCREEN_KEEP]
        grid_scored = [*finalists, *([doc] if doc in grid and doc not in finalists else [])]
    else:
        grid_scored = grid
    scores = scores_of(grid_scored)
    before = scores.get(doc) or replay.score(doc)
    cal.before = before
    eligible = doc in scores  # the direct evidence may already contradict the documented rules
    best = min(s.error for s in scores.values())
    near = [c for c, s in scores.items() if s.error <= best + TIE]
    choice = min(near, key=lambda c: (_distance(c, doc), c.min_tokens, c.ttl_minutes))
    if eligible and before.error <= scores[choice].error + cfg.calibration_margin:
        choice = doc
    cal.after = scores[choice]
    if choice == doc:
        cal.status = "documented_kept"
        cal.calibrated = doc
    else:
        cal.status = "calibrated"
        cal.calibrated = dataclasses.replace(
            choice, source=f"calibrated from {len(scored)} requests' reported cache reads",
            confidence="calibrated")
    cal.flag = _likely_cause(cal, rows, cfg, grid)


def _grid(doc: CacheRules, cfg: Any, evidence: dict[str, Any]) -> list[CacheRules]:
    mins = sorted({*cfg.calibration_min_tokens, doc.min_tokens})
    ttls = sorted({*cfg.calibration_ttl_minutes, doc.ttl_minutes})
    shortest = evidence.get("shortest_read_tokens")
    if shortest:
        mins = [m for m in mins if m <= shortest] or [min(mins)]
    gap = evidence.get("ttl_lower_bound_minutes")
    if gap:
        ttls = [t for t in ttls if t >= gap] or [max(ttls)]
    # Automatic prefix caching re-arms every prefix a request touches (audit/cache_sim.py), so
    # refresh-on-hit is a free parameter of the breakpoint regime only.
    refreshes = (doc.refresh_on_hit, not doc.refresh_on_hit) if doc.kind == "breakpoints" else (doc.refresh_on_hit,)
    out = []
    for m in mins:
        for t in ttls:
            for refresh in refreshes:
                out.append(dataclasses.replace(doc, min_tokens=m, ttl_minutes=t, refresh_on_hit=refresh))
    return out


def _distance(c: CacheRules, doc: CacheRules) -> float:
    return (abs(math.log(c.min_tokens / doc.min_tokens)) + abs(math.log(c.ttl_minutes / doc.ttl_minutes))
            + (0.5 if c.refresh_on_hit != doc.refresh_on_hit else 0.0))


def _direct_evidence(rows: list[dict[str, Any]], base: list[Any], reported: dict[int, int], doc: CacheRules,
                     block_tokens: int) -> dict[str, Any]:
    """The shortest reported read, the idle gaps that preceded reads, and reads no earlier request
    in the log could have written (the log misses traffic that shares the provider's cache)."""
    last_seen: dict[int, int] = {}
    gaps: list[float] = []
    orphans = 0
    reads = [v for v in reported.values() if v > 0]
    for i, (r, b) in enumerate(zip(rows, base, strict=True)):
        hashes = b.token_hashes if doc.kind == "auto_prefix" else b.block_hashes
        got = reported.get(i, 0)
        if got > 0 and hashes:
            key = _entry_read(got, b, doc.kind, block_tokens)
            seen = last_seen.get(key) if key is not None else None
            if seen is None:
                orphans += 1
            else:
                gaps.append((r["ts_ms"] - seen) / 60_000)
        for h in hashes:
            last_seen[h] = r["ts_ms"]
    gaps.sort(reverse=True)
    k = max(GAP_EVIDENCE_MIN_READS, math.ceil(GAP_EVIDENCE_SHARE * len(gaps)))
    return {
        "requests_with_reads": len(reads),
        "shortest_read_tokens": min(reads) if reads else None,
        "longest_gap_before_read_minutes": round(gaps[0], 2) if gaps else None,
        "ttl_lower_bound_minutes": round(gaps[k - 1], 2) if len(gaps) >= k else None,
        "reads_without_earlier_prefix": orphans,
    }


def _entry_read(read: int, b: Any, kind: str, block_tokens: int) -> int | None:
    """The hash of the cache entry a reported read of `read` provider tokens came from."""
    f = b.factor or 1.0
    if kind == "auto_prefix":
        j = min(len(b.token_hashes), int(read / f // block_tokens)) - 1
        return b.token_hashes[max(j, 0)]
    if not b.block_ends:
        return None
    # The breakpoint whose prefix length is nearest the read (the estimate is calibrated, not exact).
    best = min(range(len(b.block_ends)), key=lambda i: abs(b.block_ends[i] * f - read))
    return b.block_hashes[best]


def _likely_cause(cal: ScopeCalibration, rows: list[dict[str, Any]], cfg: Any, grid: Iterable[CacheRules]) -> str | None:
    after = cal.after
    if after is None or abs(after.simulated_share - after.reported_share) <= cfg.calibration_flag_gap:
        return None
    ev = cal.evidence
    n = len(rows)
    reads = ev.get("requests_with_reads") or 0
    incomplete = sum(1 for r in rows if r["factor"] is not None and not 0.67 <= r["factor"] <= 1.5)
    inferred = sum(1 for r in rows if r["bp_source"] == "inferred")
    causes = []
    if reads and ev.get("reads_without_earlier_prefix", 0) > 0.05 * reads:
        causes.append(f"{ev['reads_without_earlier_prefix']} of {reads} reported reads have no earlier request in "
                      "the log sharing that prefix: the log misses traffic that shares the provider's cache "
                      "(sampling, other keys, apps or regions)")
    if incomplete > 0.1 * n:
        causes.append(f"the logged prompt accounts for under 2/3 (or over 1.5x) of the reported input on {incomplete} "
                      "requests (redacted text, hidden system prompt or tools): prefix positions are approximate")
    if inferred > 0.1 * n:
        causes.append(f"{inferred} requests show cache reads/writes but no logged cache_control markers: "
                      "breakpoint positions are inferred")
    if causes:
        pass
    elif after.simulated_share > after.reported_share:
        causes.append("the provider cached less than any candidate rule allows: eviction under load, "
                      "routing overflow or cache keys splitting the traffic")
    else:
        grid = list(grid)
        causes.append("the provider cached more than any candidate rule allows (minimum "
                      f"{min(c.min_tokens for c in grid)}, TTL up to {max(c.ttl_minutes for c in grid):g} min): "
                      "behaviour outside the calibration grid")
    return "; ".join(causes)
