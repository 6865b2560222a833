"""Dedup and split-group cut-offs pinned from both sides (pipeline/dataset/dedup.py and the dataset
stage's SQL), on texts whose exact shingle Jaccard is worked out by hand.

A planted pair: user turns `qa<p>` / `qb<p>`, answers of 100 words that differ in their last k words.
Each text is 101 words = 97 five-word shingles; the shared shingles are those touching neither the
first word nor the last k: 96 - k. So J(k) = (96 - k) / (98 + k):
  k = 9 -> 0.8131 (near-duplicate, >= 0.8)   k = 10 -> 0.7963 (kept)
  k = 23 -> 0.6033 (split group, >= 0.6)     k = 24 -> 0.5902 (not grouped)
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import xxhash
from datasketch import MinHash

from pipeline.dataset import build_dataset
from pipeline.dataset import dedup as dd
from pipeline.ingest import ingest

PAIRS = {9: 6, 10: 6, 23: 10, 24: 10}  # k -> planted pairs
N_SINGLE = 60


def jaccard_by_hand(k: int) -> float:
    return (96 - k) / (98 + k)


def pair_texts(p: int, k: int) -> tuple[str, str, str, str]:
    base = [f"p{p}w{i}" for i in range(100)]
    other = base[: 100 - k] + [f"p{p}z{i}" for i in range(k)]
    return f"qa{p}", " ".join(base), f"qb{p}", " ".join(other)


def test_jaccard_by_hand_matches_the_shingles() -> None:
    for k in PAIRS:
        ua, a, ub, b = pair_texts(0, k)
        ja = dd.shingle_hashes(f"{ua}\n{a}")
        jb = dd.shingle_hashes(f"{ub}\n{b}")
        assert ja.size == jb.size == 97
        assert dd.jaccard(ja, jb) == pytest.approx(jaccard_by_hand(k), abs=1e-12)


# --- the functions, on planted hash sets ------------------------------------------------------------------


def hset(*ranges: range) -> np.ndarray:
    return np.unique(np.concatenate([np.arange(r.start, r.stop, dtype=np.uint32) for r in ranges]))


def test_jaccard_exact_and_empty_sets() -> None:
    assert dd.jaccard(hset(range(0, 90)), hset(range(10, 100))) == 0.8  # 80 shared of 100
    assert dd.jaccard(hset(range(10, 100)), hset(range(0, 90))) == 0.8  # symmetric
    assert dd.jaccard(hset(range(0, 90)), hset(range(11, 101))) == 79 / 101
    assert dd.jaccard(hset(range(0, 5)), hset(range(5, 10))) == 0.0
    assert dd.jaccard(hset(range(0, 3)), hset(range(0, 3))) == 1.0
    empty = np.zeros(0, dtype=np.uint32)
    assert dd.jaccard(empty, empty) == 1.0 and dd.jaccard(empty, hset(range(3))) == 0.0
    assert dd.jaccard(hset(range(100, 103)), hset(range(0, 3))) == 0.0  # beyond the end of the other


@pytest.mark.parametrize(("small", "large", "reach"), [(80, 100, True), (79, 100, False), (0, 0, True),
                                                       (0, 1, False), (100, 100, True)])
def test_could_reach_is_the_size_bound(small: int, large: int, reach: bool) -> None:
    a, b = hset(range(small)), hset(range(1000, 1000 + large))
    assert dd.could_reach(a, b, 0.8) is reach and dd.could_reach(b, a, 0.8) is reach


def test_near_duplicate_pairs_at_and_below_the_threshold() -> None:
    cfg = dd.DedupConfig()
    sets = [hset(range(0, 90)), hset(range(10, 100)),  # J = 0.8 exactly
            hset(range(1000, 1090)), hset(range(1011, 1101)),  # J = 79/101
            hset(range(5000, 5100))]
    sigs = dd.signatures_from_hashes(sets, cfg)
    assert dd.near_duplicate_pairs(sets, sigs, cfg) == [(0, 1, 0.8)]
    assert [p[:2] for p in dd.near_duplicate_pairs(sets, sigs, cfg, threshold=0.78)] == [(0, 1), (2, 3)]
    assert dd.cross_pairs(sets[:1], sigs[:1], sets[1:], sigs[1:], cfg) == [(0, 0, 0.8)]
    assert dd.cross_pairs(sets[2:3], sigs[2:3], sets[3:], sigs[3:], cfg) == []
    assert dd.cross_pairs(sets[2:3], sigs[2:3], sets[3:], sigs[3:], cfg, threshold=0.78) == [(0, 0, 79 / 101)]


def test_exact_pairs_brute_force() -> None:
    sets = [hset(range(0, 90)), hset(range(10, 100)), hset(range(11, 101))]
    assert [(i, j) for i, j, _ in dd.exact_pairs(sets, 0.8)] == [(0, 1), (1, 2)]


def test_exact_key_ignores_case_spacing_punctuation_and_volatile_ids() -> None:
    a = dd.exact_key("Order 550e8400-e29b-41d4-a716-446655440000 shipped at 2026-09-01T10:00:00Z, OK!")
    b = dd.exact_key("order   9f1c2d3e-aaaa-4bbb-8ccc-123456789abc shipped at 2027-01-31 23:59  ok")
    assert a == b
    assert dd.exact_key("order shipped") != dd.exact_key("order shipped twice")
    assert dd.exact_key("Ｆｕｌｌ width") == dd.exact_key("full width")  # NFKC


def test_short_texts_are_one_shingle() -> None:
    assert dd.shingles("one two three four", 5) == [b"one two three four"]
    assert len(dd.shingles("one two three four five", 5)) == 1
    assert len(dd.shingles("one two three four five six", 5)) == 2


def test_union_find_components() -> None:
    uf = dd.UnionFind(6)
    for x, y in [(0, 1), (2, 3), (1, 3), (4, 4)]:
        uf.union(x, y)
    assert len({uf.find(i) for i in range(4)}) == 1
    assert len({uf.find(i) for i in range(6)}) == 3
    assert uf.size[uf.find(0)] == 4


# --- end to end: the dataset build drops and groups at the cut-offs ----------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, dict], dict]:
    root = tmp_path_factory.mktemp("dedup_edges")
    lines, members = [], {}
    p = 0
    for k, n in PAIRS.items():
        for _ in range(n):
            ua, a, ub, b = pair_texts(p, k)
            members[p] = (k, f"a{p}", f"b{p}")
            lines += [_record(f"a{p}", ua, a, len(lines)), _record(f"b{p}", ub, b, len(lines) + 1)]
            p += 1
    for i in range(N_SINGLE):
        lines.append(_record(f"x{i}", f"single{i}", " ".join(f"s{i}w{j}" for j in range(60)), len(lines)))
    (root / "logs.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    ingest([str(root / "logs.jsonl")], root / "work", progress=False)
    manifest = build_dataset(root / "work").manifest
    lineage = {r["request_id"]: r for r in pq.read_table(root / "work" / "dataset" / "lineage.parquet").to_pylist()
               if r["request_id"]}
    return manifest, lineage, members


def _record(rid: str, user: str, answer: str, n: int) -> str:
    req = {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": user}]}
    resp = {"id": f"c-{rid}", "object": "chat.completion", "model": "gpt-4.1-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 100, "total_tokens": 105}}
    return json.dumps({"id": rid, "timestamp": 1_788_000_000 + n * 60, "provider": "openai",
                       "endpoint": "/v1/chat/completions", "request": req, "response": resp})


def test_near_duplicates_dropped_at_0_8_and_kept_below(built: Any) -> None:
    manifest, lineage, members = built
    dropped = {rid for rid, r in lineage.items() if r["kind"] == "dropped" and r["reason"] == "near_duplicate"}
    for k, a, b in members.values():
        if jaccard_by_hand(k) >= 0.8:
            assert len(dropped & {a, b}) == 1, (k, a, b)  # one of the two is kept
        else:
            assert not dropped & {a, b}, (k, a, b)
    assert len(dropped) == PAIRS[9]


def lsh_candidate(p: int, k: int) -> bool:
    """Whether datasketch's MinHash (128 permutations, seed 1, xxh32 shingle hashes, affine32 scheme)
    puts the pair in one bucket of a (20 bands x 6 rows) LSH: the reference for the dedup banding,
    worked with the library, not with the module under test."""
    sketches = []
    for text in pair_texts(p, k)[:2], pair_texts(p, k)[2:]:
        words = " ".join(text).split()
        sketch = MinHash(num_perm=128, seed=1, hashfunc=xxhash.xxh32_intdigest, scheme="affine32")
        sketch.update_batch([" ".join(words[i : i + 5]).encode() for i in range(len(words) - 4)])
        sketches.append(sketch.hashvalues)
    a, b = sketches
    return any(np.array_equal(a[r * 6 : r * 6 + 6], b[r * 6 : r * 6 + 6]) for r in range(20))


def test_split_groups_at_0_6_and_not_below(built: Any) -> None:
    """Every kept pair at or above 0.6 that the dedup banding offers as a candidate becomes a split
    group (the k = 10 pairs at 0.796, the k = 23 pairs at 0.603 that are candidates); no k = 24 pair
    at 0.590 does, candidate or not. Both members of a grouped pair land in one split."""
    manifest, lineage, members = built
    grouped = [(p, k) for p, (k, _, _) in members.items() if k in (10, 23) and lsh_candidate(p, k)]
    assert sum(k == 23 for _, k in grouped) >= 3  # the 0.603 side is exercised
    assert sum(lsh_candidate(p, k) for p, (k, _, _) in members.items() if k == 24) >= 3  # and the 0.590 side
    assert manifest["split"]["near_links"] == len(grouped)
    for k, a, b in members.values():
        if k == 10:
            assert lineage[a]["split"] == lineage[b]["split"]


def test_signatures_follow_the_configured_ngram() -> None:
    cfg3 = dd.DedupConfig(ngram=3)
    text = "one two three four five six seven"
    assert np.array_equal(dd.signatures([text], cfg3), dd.signatures_from_hashes([dd.shingle_hashes(text, 3)], cfg3))
    assert not np.array_equal(dd.signatures([text], cfg3), dd.signatures([text], dd.DedupConfig()))


def test_cross_pairs_skips_a_size_mismatch_and_goes_on() -> None:
    """Index 0 is a subset of half the size (an LSH candidate the size bound rejects), index 1 the
    same set: the rejection of the first candidate must not end the query's loop."""
    cfg = dd.DedupConfig()
    query, index = [hset(range(0, 100))], [hset(range(0, 50)), hset(range(0, 100))]
    sigs_q, sigs_i = dd.signatures_from_hashes(query, cfg), dd.signatures_from_hashes(index, cfg)
    assert dd.cross_pairs(query, sigs_q, index, sigs_i, cfg) == [(0, 1, 1.0)]
    assert dd.cross_pairs(query, sigs_q, index, sigs_i, cfg, threshold=0.5) == [(0, 0, 0.5), (0, 1, 1.0)]
