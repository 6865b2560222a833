"""The similarity kit's vectorized pieces (pipeline/similarity.py) on inputs small enough to work by
hand: exact intersections and Jaccard of hash sets (both empty, one empty, unsorted uids, the last
hash of a set), connected components that need pointer jumping, the band keys against a plain-int
splitmix64 reference, and the dedup tokenizer on Unicode words.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from datasketch import MinHash

from pipeline.dataset import dedup as dd
from pipeline.similarity import (
    MinHasher,
    _ranges,
    band_keys,
    components,
    intersections,
    jaccards,
    lsh_pairs,
    minhash_signatures,
)

M64 = (1 << 64) - 1


def test_jaccards_of_sizes_and_intersections() -> None:
    """Both empty: 1.0; one empty: 0.0; 1 of 1 + 4: 1/4; 3 of 6 + 6: 3/9; a union of one: one empty
    and one single hash 0.0, the same single hash 1.0; sizes whose int32 sum overflows: 1/3."""
    inter = np.array([0, 0, 0, 1, 3, 0, 1, 1 << 29])
    ni = np.array([0, 0, 5, 1, 6, 1, 1, 1 << 30], dtype=np.int32)
    nj = np.array([0, 4, 0, 4, 6, 0, 1, 1 << 30], dtype=np.int32)
    assert jaccards(inter, ni, nj).tolist() == [1.0, 0.0, 0.0, 0.25, 1 / 3, 0.0, 1.0, 1 / 3]


def sets(*members: list[int]) -> pa.ListArray:
    return pa.array([sorted(m) for m in members], pa.list_(pa.uint32()))


def test_intersections_by_hand() -> None:
    """uids in no order (30, 10, 20, 40, 50): {1, 2, 3}, {3}, {5}, {}, {9}. Pairs: 30 & 10 = 1 (alone,
    the shared hash is the largest of all left hashes), 20 & 50 = 0 (a one-hash left set, the right hash above it), 10 & 30 = 1,
    40 & 20 = 0 (an empty left set), 50 & 40 = 0 (an empty right set, last)."""
    uids = np.array([30, 10, 20, 40, 50])
    hashes = sets([1, 2, 3], [3], [5], [], [9])
    i = np.array([30, 20, 10, 40, 50])
    j = np.array([10, 50, 30, 20, 40])
    got = intersections(i, j, uids, hashes)
    assert got.dtype == np.int64 and got.tolist() == [1, 0, 1, 0, 0]
    only_empty_left = intersections(np.array([40, 40]), np.array([20, 10]), uids, hashes)
    assert only_empty_left.dtype == np.int64 and only_empty_left.tolist() == [0, 0]
    assert intersections(np.array([30]), np.array([10]), uids, hashes).tolist() == [1]
    empty = intersections(np.zeros(0, np.int64), np.zeros(0, np.int64), uids, hashes)
    assert empty.dtype == np.int64 and empty.shape == (0,)


def test_ranges() -> None:
    assert _ranges(np.array([5, 0, 2]), np.array([2, 0, 3])).tolist() == [5, 6, 2, 3, 4]
    assert _ranges(np.array([7]), np.array([1])).tolist() == [7]
    assert _ranges(np.zeros(0, np.int64), np.zeros(0, np.int64)).tolist() == []


def test_components_need_pointer_jumping() -> None:
    """A chain 4 - 3 - 2 - 1 - 0 in that edge order, and 6 - 5 apart: labels are the smallest member."""
    labels = components(8, np.array([1, 2, 3, 4, 6]), np.array([0, 1, 2, 3, 5]))
    assert labels.tolist() == [0, 0, 0, 0, 0, 5, 5, 7]
    assert components(3, np.zeros(0, np.int64), np.zeros(0, np.int64)).tolist() == [0, 1, 2]


def _mix64_reference(h: int) -> int:
    """splitmix64's finalizer on plain Python ints."""
    h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & M64
    h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & M64
    return h ^ (h >> 31)


def test_band_keys_against_a_plain_int_reference() -> None:
    """Band b of a document: start from (b + 1) x the golden-ratio constant, then for each of the
    band's rows mix in that signature value."""
    rng = np.random.default_rng(3)
    sigs = rng.integers(0, 2**32, size=(3, 12), dtype=np.uint64).astype(np.uint32)
    keys = band_keys(sigs, 4, 3)
    for d in range(3):
        for b in range(4):
            h = ((b + 1) * 0x9E3779B97F4A7C15) & M64
            for r in range(b * 3, b * 3 + 3):
                h = _mix64_reference(h ^ int(sigs[d, r]))
            assert int(keys[d, b]) == h, (d, b)


def test_lsh_pairs_with_64_permutations() -> None:
    """The index takes its width from the signatures (64 here, not datasketch's default 128)."""
    a, b = np.arange(0, 100, dtype=np.uint32), np.arange(10, 110, dtype=np.uint32)  # J = 90 / 110
    sigs = []
    for s in (a, b):
        m = MinHash(num_perm=64, seed=1)
        m.update_batch([int(x).to_bytes(4, "little") for x in s])
        sigs.append(m.hashvalues.astype(np.uint32))
    pairs = lsh_pairs([a, b], np.array(sigs), 0.8, (16, 4), seed=1)
    assert [(i, j) for i, j, _ in pairs] == [(0, 1)] and pairs[0][2] == 90 / 110


def test_dedup_words_are_unicode_and_lower_case() -> None:
    assert dd.words("Привет, Мир! Café x2") == ["привет", "мир", "café", "x2"]


def test_default_ngram_is_five() -> None:
    six = "one two three four five six"
    assert len(dd.shingles(six)) == 2 and dd.text_features(six)[1].size == 2


def test_minhash_signatures_of_empty_and_one_hash_sets_in_any_chunking() -> None:
    """Against datasketch's own MinHash (hashfunc=int: the hashes as given): an empty set is all
    2^32 - 1 (`empty="max"`) or the set {0} (`empty="zero"`, dedup's), whatever the block size."""
    sets = [np.zeros(0, np.uint32), np.array([5], np.uint32), np.arange(0, 40, dtype=np.uint32),
            np.arange(20, 90, dtype=np.uint32), np.zeros(0, np.uint32)]
    for empty in ("max", "zero"):
        expected = []
        for s in sets:
            m = MinHash(num_perm=64, seed=1, hashfunc=int)
            values = [int(x) for x in s] or ([0] if empty == "zero" else [])
            if values:
                m.update_batch(values)
            expected.append(m.hashvalues.astype(np.uint32))
        for chunk in (1, 41, 110, 1_000_000):
            got = minhash_signatures(sets, 64, 1, chunk_shingles=chunk, empty=empty)
            assert np.array_equal(got, np.array(expected)), (empty, chunk)
        assert np.array_equal(MinHasher(64, 1, empty=empty).signatures(sets), np.array(expected))
