"""The dataset's global steps on hand-built example tables, no ingest: the deduplication
(`assemble.deduplicate`: exact keys, candidate pairs verified by exact Jaccard, near-duplicate
clusters) and the group-aware split (`assemble.split`: links, near links, the seeded filling of each
task type's eval target). Every expected value is worked by hand in the test's docstring.

Shingle-hash sets are integer ranges: range(0, 100) and range(k, 100 + k) share 100 - k of 100 + k
hashes, J = (100 - k) / (100 + k); range(0, 90) and range(10, 100) share exactly 80 of 100 (J = 0.8).
LSH band keys are planted too (a pair is a candidate exactly when it shares a key), so the tests
pin the verification and the cut-offs, not the banding (test_thresholds_dedup.py checks that).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.dataset import assemble
from pipeline.dataset import dedup as dd
from pipeline.dataset.bucket import EXAMPLE_SCHEMA


@dataclass
class Ex:
    rid: str
    split_key: int
    task: str = "t"
    session: str | None = None
    prompt: bytes | None = None
    hashes: range = range(0)
    bands: tuple[int, ...] = ()
    exact: bytes | None = None
    rank_ts: float = 0.0


def store(tmp_path: Path, examples: list[Ex], cand: list[tuple[str, str, float]] | None = None
          ) -> tuple[duckdb.DuckDBPyConnection, assemble.Inputs, dict[str, int]]:
    """The examples file and the `ex` / `dup` tables the dataset stage builds; `cand` rows (verified
    pairs by request id, sizes 100 / 100) when a test plants them directly."""
    uid = {e.rid: 1000 + n for n, e in enumerate(examples)}
    rows: dict[str, list[Any]] = {f.name: [] for f in EXAMPLE_SCHEMA}
    for n, e in enumerate(examples):
        hashes = list(e.hashes) or [10_000 + n]  # distinct texts unless a test says otherwise
        values = {
            "uid": uid[e.rid], "example_id": e.rid, "final_request_id": e.rid, "ts": None, "rank_positive": 1,
            "rank_ts": e.rank_ts, "sort_ts": float(n), "task_type": e.task, "slug": e.task, "session_id": e.session,
            "tokens": 10, "assistant_tokens": 5, "redactions": 0, "exact_key": e.exact or e.rid.encode(),
            "prompt_key": e.prompt, "split_key": e.split_key, "n_hashes": len(hashes), "hashes": hashes,
            "bands": list(e.bands) or [1_000_000 + n], "leak_n": len(hashes), "leak_hashes": None,
            "leak_bands": [], "request_ids": [e.rid], "record": "{}", "record_bytes": 3,
        }
        for k, v in values.items():
            rows[k].append(v)
    work = tmp_path / "work"
    (work / "examples").mkdir(parents=True)
    pq.write_table(pa.table(rows, schema=EXAMPLE_SCHEMA), work / "examples" / "0.parquet")
    inputs = assemble.Inputs(work)
    con = duckdb.connect()
    assemble.execute(con, "examples_table", examples=inputs.examples)
    assemble.execute(con, "dup_table")
    if cand is not None:
        assemble.execute(con, "verified_candidates")
        for a, b, j in cand:
            con.execute("INSERT INTO cand VALUES (?, ?, 100, 100, ?)", [uid[a], uid[b], j])
    return con, inputs, uid


def placed(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, str]]:
    return {rid: (split, rel) for rid, split, rel in
            con.sql("SELECT final_request_id, split, rel FROM placed").fetchall()}


def eval_ids(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {rid for rid, (split, _) in placed(con).items() if split == "eval"}


# --- the split: links, group filling, targets --------------------------------------------------------------

# Target 4 for 12 examples: floor round(0.2 x 12) = 2, want min(max(2, 4), 4) = 4, cap max(2, round(0.5 x 12) = 6).
# Target 2 for 4 examples: floor round(0.8) = 1, want 4, cap max(1, round(2.0)) = 2.
POLICY = assemble.EvalPolicy(min_fraction=0.2, target_min=4, target_max=4, max_fraction=0.5)


def planted_groups() -> list[Ex]:
    """Task t (12 examples): session A = a1, a2, a3 (seeded order 10: the split key of its smallest
    request id a1), prompt group B = b1, b2 (order 20: b1's key, though b2's is 5), then singletons
    c (30), d (40), e1..e5 (50..54). Task u (4 singletons): u2 (5), u1 (15), u3 (25), u4 (35)."""
    t = [Ex("a1", 10, session="A"), Ex("a2", 90, session="A"), Ex("a3", 91, session="A"),
         Ex("b1", 20, prompt=b"same prompt"), Ex("b2", 5, prompt=b"same prompt"),
         Ex("c", 30), Ex("d", 40)] + [Ex(f"e{k}", 50 + k) for k in range(1, 6)]
    u = [Ex("u1", 15, task="u"), Ex("u2", 5, task="u"), Ex("u3", 25, task="u"), Ex("u4", 35, task="u")]
    return t + u


def run_split(con: duckdb.DuckDBPyConnection, n: int, per_task: bool = False,
              threshold: float = 0.6) -> assemble.SplitStats:
    return assemble.split(con, n, threshold, policy=POLICY, per_task=per_task)


def test_groups_fill_the_target_in_seeded_order_skipping_an_overshoot(tmp_path: Path) -> None:
    """t's target is 4: A (3) is taken, B (3 + 2 = 5 > 4) skipped, c fills it exactly (3 + 1 = 4),
    d and the rest are past the target. u's target is 2: u2 then u1. Links: a2 and a3 to a1 (2
    session links), b2 to b1 (1 prompt link); 12 + 4 examples in 1 + 1 + 7 + 4 = 13 groups, the
    largest 3."""
    con, _, _ = store(tmp_path, planted_groups(), cand=[])
    stats = run_split(con, 16)
    assert eval_ids(con) == {"a1", "a2", "a3", "c", "u2", "u1"}
    assert stats == assemble.SplitStats(groups=13, largest_group=3, session_links=2, near_links=0, prompt_links=1,
                                        eval_targets={"t": 4, "u": 2})
    assert list(stats.eval_targets) == ["t", "u"]
    assert {rel for _, rel in placed(con).values()} == {"train.jsonl", "eval.jsonl"}


def test_per_task_files(tmp_path: Path) -> None:
    con, _, _ = store(tmp_path, planted_groups(), cand=[])
    run_split(con, 16, per_task=True)
    where = placed(con)
    assert where["a1"] == ("eval", "tasks/t/eval.jsonl") and where["d"] == ("train", "tasks/t/train.jsonl")
    assert where["u2"] == ("eval", "tasks/u/eval.jsonl") and where["u4"] == ("train", "tasks/u/train.jsonl")


def near_planted() -> list[Ex]:
    """Task t: p, q (orders 1, 60), r, s (2, 61), then singletons f1..f8 (10..17): 12 examples, target 4."""
    return [Ex("p", 1), Ex("q", 60), Ex("r", 2), Ex("s", 61)] + [Ex(f"f{k}", 10 + k) for k in range(1, 9)]


def test_near_links_at_the_group_threshold_and_not_below(tmp_path: Path) -> None:
    """p-q verified at exactly 0.6 is a group, r-s at 0.5999 is not. Fill to 4: {p, q} (order 1),
    r (2), f1 (11); s stays in train with its own order 61."""
    con, _, _ = store(tmp_path, near_planted(), cand=[("p", "q", 0.6), ("r", "s", 0.5999)])
    stats = run_split(con, 12)
    assert (stats.near_links, stats.groups, stats.largest_group) == (1, 11, 2)
    assert eval_ids(con) == {"p", "q", "r", "f1"}


def test_group_threshold_of_one_still_groups_identical_sets(tmp_path: Path) -> None:
    """`split_group_threshold` 1.0 groups only J = 1 (> 1 disables grouping): p-q at 1.0 grouped."""
    con, _, _ = store(tmp_path, near_planted(), cand=[("p", "q", 1.0), ("r", "s", 0.9999)])
    stats = run_split(con, 12, threshold=1.0)
    assert stats.near_links == 1 and eval_ids(con) == {"p", "q", "r", "f1"}


def test_two_kept_examples_are_enough_for_a_near_link(tmp_path: Path) -> None:
    """Two examples at J = 0.7: one group of 2. The target of 2 examples is 1 (floor round(0.4) = 0,
    want 4, cap max(0, round(1.0)) = 1), which the group (2 > 1) would overshoot: both stay in train;
    ungrouped, p (order 1) would go to eval."""
    con, _, _ = store(tmp_path, [Ex("p", 1), Ex("q", 2)], cand=[("p", "q", 0.7)])
    stats = run_split(con, 2)
    assert stats.near_links == 1 and stats.eval_targets == {"t": 1}
    assert eval_ids(con) == set()


# --- deduplicate: exact, candidates verified at the lower threshold, near-duplicate clusters -------------


def dedup_planted() -> list[Ex]:
    """x1 / x2: one exact key (x1 ranked first by rank_ts). n1 - n2 - n3: a chain at J = 0.8 exactly
    (90-hash sets shifted by 10; n1 - n3 share 70 of 110, 0.636, and no band key). g: k = 25 (J = 0.6
    exactly), h: k = 26 (74 / 126 = 0.587), m: k = 12 (88 / 112 = 0.786, below 0.8), each pair sharing a key."""
    def shifted(name: str, k: int, key: int) -> list[Ex]:
        base = 1000 * key
        return [Ex(f"{name}1", key, hashes=range(base, base + 100), bands=(key,)),
                Ex(f"{name}2", key + 1, hashes=range(base + k, base + 100 + k), bands=(key,))]

    return ([Ex("x1", 1, exact=b"X", rank_ts=-2.0), Ex("x2", 2, exact=b"X", rank_ts=-1.0),
             Ex("n1", 3, hashes=range(0, 90), bands=(7,)), Ex("n2", 4, hashes=range(10, 100), bands=(7, 8)),
             Ex("n3", 5, hashes=range(20, 110), bands=(8,))]
            + shifted("g", 25, 20) + shifted("h", 26, 30) + shifted("m", 12, 40))


def dup_rows(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, str, float]]:
    rid = dict(con.sql("SELECT uid, final_request_id FROM ex").fetchall())
    return {rid[u]: (reason, rid[b], round(j, 4)) for u, reason, b, j in con.sql("SELECT * FROM dup").fetchall()}


def cand_pairs(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], float]:
    rid = dict(con.sql("SELECT uid, final_request_id FROM ex").fetchall())
    return {(rid[i], rid[j]): round(jac, 4) for i, j, jac in con.sql("SELECT i, j, jaccard FROM cand").fetchall()}


def test_deduplicate_exact_near_and_group_candidates(tmp_path: Path) -> None:
    """Exact: x2 is x1's duplicate. Verified at the lower threshold 0.6: n1-n2, n2-n3 (0.8), g (0.6)
    and m (0.7857); h (0.587) is not. Near at 0.8: the chain is one cluster whose representative n1
    (first request id, equal ranks) keeps n2 and n3 out with their best Jaccard 0.8."""
    con, inputs, _ = store(tmp_path, dedup_planted())
    out = assemble.deduplicate(con, inputs, dd.DedupConfig(), 0.6, 11)
    assert out == assemble.DedupOutcome(duplicates=1, near_duplicates=2, near_pairs_verified=2)
    assert dup_rows(con) == {"x2": ("duplicate", "x1", 1.0), "n2": ("near_duplicate", "n1", 0.8),
                             "n3": ("near_duplicate", "n1", 0.8)}
    assert cand_pairs(con) == {("n1", "n2"): 0.8, ("n2", "n3"): 0.8, ("g1", "g2"): 0.6, ("m1", "m2"): 0.7857}


def test_deduplicate_without_grouping_verifies_at_the_dedup_threshold(tmp_path: Path) -> None:
    """A group threshold above 1 (grouping off) leaves the candidates at the dedup threshold 0.8."""
    con, inputs, _ = store(tmp_path, dedup_planted())
    assemble.deduplicate(con, inputs, dd.DedupConfig(), 1.01, 11)
    assert cand_pairs(con) == {("n1", "n2"): 0.8, ("n2", "n3"): 0.8}


def test_deduplicate_switches(tmp_path: Path) -> None:
    """exact = near = False: nothing dropped, the candidates still verified for the split groups.
    A dedup threshold of 0.7 with groups at 0.9: verified at 0.7, and m (0.786) is a near-duplicate."""
    con, inputs, _ = store(tmp_path, dedup_planted())
    out = assemble.deduplicate(con, inputs, dd.DedupConfig(exact=False, near=False), 0.6, 11)
    assert out == assemble.DedupOutcome(0, 0, 0) and dup_rows(con) == {}
    assert len(cand_pairs(con)) == 4
    con, inputs, _ = store(tmp_path / "b", dedup_planted())
    out = assemble.deduplicate(con, inputs, dd.DedupConfig(threshold=0.7), 0.9, 11)
    assert out == assemble.DedupOutcome(duplicates=1, near_duplicates=3, near_pairs_verified=3)
    assert dup_rows(con)["m2"] == ("near_duplicate", "m1", 0.7857)


@pytest.mark.parametrize("chunk", [1, 2, 16_384])
def test_verified_pairs_in_chunks(tmp_path: Path, chunk: int) -> None:
    """Pairs stream in chunks, each fetching the sets of its own documents (the right-hand ones too):
    n1-n2 and n2-n3 at exactly 0.8 kept at threshold 0.8, n1-n3 (0.636) and g1-g2 (0.6) not."""
    con, inputs, uid = store(tmp_path, dedup_planted())
    pairs = [(uid["n1"], uid["n2"]), (uid["n1"], uid["n3"]), (uid["n2"], uid["n3"]), (uid["g1"], uid["g2"])]
    con.execute("CREATE TABLE cand_pairs (i BIGINT, j BIGINT, ni INTEGER, nj INTEGER)")
    con.executemany("INSERT INTO cand_pairs SELECT ?, ?, n_hashes, (SELECT n_hashes FROM ex WHERE uid = ?) FROM ex "
                    "WHERE uid = ?", [(i, j, j, i) for i, j in pairs])
    con.execute("CREATE TABLE cand_sets AS SELECT uid, hashes FROM read_parquet($p)", {"p": inputs.examples})
    parts = list(assemble.verified_pairs(con, "candidate_pairs_ordered", "candidate_chunk_sets", 0.8, chunk=chunk))
    got = [(r["i"], r["j"], r["jaccard"]) for p in parts for r in p.to_pylist()]
    assert got == [(uid["n1"], uid["n2"], 0.8), (uid["n2"], uid["n3"], 0.8)]


@pytest.mark.parametrize(("threshold", "grouped"), [(1.0, True), (1.01, False)])
def test_grouping_off_above_one(tmp_path: Path, threshold: float, grouped: bool) -> None:
    """c and d verified at J = 1.0. At a group threshold of 1.0 they are one group (order 30, size 2):
    A (3) taken, B and {c, d} overshoot the target of 4, e1 fills it. Above 1 (grouping off) the
    sessions and prompts still link, c fills t's target as in the first test."""
    con, _, _ = store(tmp_path, planted_groups(), cand=[("c", "d", 1.0)])
    stats = run_split(con, 16, threshold=threshold)
    assert (stats.near_links, stats.groups, stats.session_links, stats.prompt_links) == (
        (1, 12, 2, 1) if grouped else (0, 13, 2, 1))
    assert eval_ids(con) == {"a1", "a2", "a3", "e1" if grouped else "c", "u2", "u1"}
