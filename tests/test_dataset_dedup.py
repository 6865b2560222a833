"""MinHash dedup: bulk signatures equal datasketch's own, near-duplicates collapse, distinct texts survive."""

from __future__ import annotations

import random

import numpy as np
from datasketch import LeanMinHash, MinHashLSH

from pipeline.dataset import dedup as dd

WORDS = [f"w{i}" for i in range(2000)]


def _texts(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 120))) for _ in range(n)]


def _mutate(text: str, k: int, rng: random.Random) -> str:
    words = text.split()
    for _ in range(k):
        words[rng.randrange(len(words))] = rng.choice(WORDS)
    return " ".join(words)


def test_bulk_signatures_are_bit_identical_to_datasketch_update_loop_and_bulk() -> None:
    cfg = dd.DedupConfig(chunk_shingles=300)  # small blocks exercise the chunk boundaries
    texts = _texts(150) + ["", "one two", "Ünïcödé  TEXT\twith   spaces and more words here"]
    fast = dd.signatures(texts, cfg)
    assert fast.dtype == np.uint32 and fast.shape == (len(texts), cfg.num_perm)
    assert np.array_equal(fast, dd.signatures_update_loop(texts, cfg))
    assert np.array_equal(fast, dd.signatures_bulk(texts, cfg))


def test_signatures_work_in_a_datasketch_index() -> None:
    cfg = dd.DedupConfig()
    base = " ".join(WORDS[:200])
    sigs = dd.signatures([base, base.replace("w100 ", "x100 "), " ".join(WORDS[500:700])], cfg)
    lsh = MinHashLSH(num_perm=cfg.num_perm, params=(cfg.bands, cfg.rows))
    for i, row in enumerate(sigs):
        lsh.insert(i, LeanMinHash(seed=cfg.seed, hashvalues=row, scheme="affine32"))
    assert sorted(lsh.query(LeanMinHash(seed=cfg.seed, hashvalues=sigs[0], scheme="affine32"))) == [0, 1]


def test_near_duplicates_are_found_with_exact_jaccard_and_distinct_texts_are_not() -> None:
    rng = random.Random(7)
    cfg = dd.DedupConfig()
    originals = [" ".join(rng.choice(WORDS) for _ in range(150)) for _ in range(200)]
    near = [_mutate(t, 2, rng) for t in originals[:40]]  # 2 edits of 150 words: J ~ 0.87
    far = [_mutate(t, 20, rng) for t in originals[40:60]]  # J well below 0.8
    texts = originals + near + far
    hashes = [dd.shingle_hashes(t) for t in texts]
    pairs = dd.near_duplicate_pairs(hashes, dd.signatures_from_hashes(hashes, cfg), cfg)
    found = {(i, j) for i, j, _ in pairs}
    planted = {(i, 200 + i) for i in range(40)}
    assert planted <= found  # recall 1.0 on these
    assert found <= planted  # no pair below 0.8 survives exact verification
    for i, j, jac in pairs:
        assert jac == dd.jaccard(hashes[i], hashes[j]) >= cfg.threshold


def test_cross_pairs_find_eval_items_leaking_from_train() -> None:
    rng = random.Random(3)
    cfg = dd.DedupConfig()
    train = [" ".join(rng.choice(WORDS) for _ in range(80)) for _ in range(50)]
    evals = [_mutate(train[5], 1, rng), " ".join(rng.choice(WORDS) for _ in range(80))]
    th = [dd.shingle_hashes(t) for t in train]
    eh = [dd.shingle_hashes(t) for t in evals]
    pairs = dd.cross_pairs(eh, dd.signatures_from_hashes(eh, cfg), th, dd.signatures_from_hashes(th, cfg), cfg)
    assert [(i, j) for i, j, _ in pairs] == [(0, 5)]


def test_normalization_masks_case_spacing_ids_and_timestamps() -> None:
    a = "Order 550e8400-e29b-41d4-a716-446655440000 at 2026-09-01T10:00:00Z:  Ship IT"
    b = "order 123e4567-e89b-12d3-a456-426614174000 at 2026-10-02 11:30:00: ship it"
    assert dd.exact_key(a) == dd.exact_key(b)
    assert dd.exact_key(a) != dd.exact_key("order at: ship it now")


def test_union_find_groups_transitively() -> None:
    uf = dd.UnionFind(5)
    uf.union(0, 1)
    uf.union(3, 1)
    assert uf.find(0) == uf.find(3) != uf.find(2)


def test_lsh_recall_against_brute_force_exact_jaccard() -> None:
    rng = random.Random(11)
    originals = [" ".join(rng.choice(WORDS) for _ in range(100)) for _ in range(120)]
    copies = [_mutate(t, k, rng) for t, k in zip(originals[:60], [1, 2, 3] * 20, strict=True)]
    texts = originals + copies
    hashes = [dd.shingle_hashes(t) for t in texts]
    truth = dd.exact_pairs(hashes, 0.8)
    assert len(truth) >= 30
    assert dd.find_near_duplicates(texts) == truth


def test_permutations_are_datasketchs_own() -> None:
    from datasketch import MinHash

    for seed, num_perm in ((1, 128), (7, 64)):
        a, b = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
        mine = dd.permutations(dd.DedupConfig(seed=seed, num_perm=num_perm))
        assert np.array_equal(mine[0], a) and np.array_equal(mine[1], b)


def test_band_keys_are_equal_exactly_when_a_band_is() -> None:
    rng = np.random.default_rng(2)
    sigs = rng.integers(0, 2**32, size=(50, 128), dtype=np.uint32)
    sigs[1, :6] = sigs[0, :6]  # doc 1 shares band 0 (20 x 6) with doc 0, and nothing else
    keys = dd.band_keys(sigs, 20, 6)
    assert keys.shape == (50, 20) and keys.dtype == np.uint64
    assert keys[0, 0] == keys[1, 0] and not np.any(keys[0, 1:] == keys[1, 1:])
    shared = {(i, j) for b in range(20) for i in range(50) for j in range(i + 1, 50) if keys[i, b] == keys[j, b]}
    assert shared == {(0, 1)}
    sigs[2, 6:12] = sigs[2, :6]  # equal values in two bands of one document still make two keys
    assert dd.band_keys(sigs, 20, 6)[2, 0] != dd.band_keys(sigs, 20, 6)[2, 1]
