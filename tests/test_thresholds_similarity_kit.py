"""The similarity kit's smaller pieces, on inputs worked by hand (pipeline/similarity.py): the LSH
banding choice on both sides of its cut (`lsh_params`), query-then-insert linking (`lsh_link`: the
estimate at exactly the threshold, the core cut that decides what is indexed, the index cap, the
order, `verify`, a caller's union-find), masking and word patterns, both shingle hashings against
plain-Python references, union-find roots and labels, and the MinHasher's defaults.

Expected values come from the definitions (a midpoint table, xxh32 of hand-written shingles,
datasketch's own MinHash), never from the function under test.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import xxhash
from datasketch import MinHash

from pipeline.dataset import dedup as dd
from pipeline.similarity import (
    TEMPLATE_SHINGLES,
    TEMPLATE_WORDS,
    UNICODE_WORDS,
    VOLATILE_MASKING,
    Masking,
    MinHasher,
    ShingleHasher,
    UnionFind,
    dedup_shingles,
    lsh_link,
    lsh_params,
    mask_dynamic,
    minhash_signatures,
    words,
)

M64 = (1 << 64) - 1

# --- lsh_params: the largest S-curve midpoint (1/b)^(1/r) at or below threshold - 0.1 ---------------------


@pytest.mark.parametrize(("threshold", "num_perm", "expected"), [
    # Nothing at or below 0.0 (r = 1 gives 1/64): the fallback, one row per band.
    (0.1, 64, (64, 1)),
    # Target 0.2: r = 2, b = 32 -> 0.1768 fits; r = 3, b = 21 -> 0.3625 does not.
    (0.3, 64, (32, 2)),
    # Target 0.4: r = 3, b = 21 (64 / 3 is not whole) -> 0.3625 fits; r = 4, b = 16 -> 0.5 does not.
    (0.5, 64, (21, 3)),
    # Target exactly 0.5 = (1/16)^(1/4): "at or below" takes it (r = 5, b = 12 -> 0.6084 does not fit).
    (0.6, 64, (16, 4)),
    # Target 0.6: r = 3, b = 6 -> 0.5503 fits; r = 4, b = 5 -> 0.6687 does not.
    (0.7, 20, (6, 3)),
    # Target 0.7: r = 7, b = 18 -> 0.6617 fits; r = 8, b = 16 -> 0.7071 does not.
    (0.8, 128, (18, 7)),
])
def test_lsh_params_by_hand(threshold: float, num_perm: int, expected: tuple[int, int]) -> None:
    assert lsh_params(threshold, num_perm) == expected


def test_lsh_params_target_is_exactly_a_midpoint() -> None:
    """The (0.6, 64) case above depends on 0.6 - 0.1 being exactly 0.5 in floating point."""
    assert 0.6 - 0.1 == (1 / 16) ** (1 / 4) == 0.5


# --- lsh_link: with 4 permutations and threshold 0.5 the banding is (4, 1): any equal position makes a
# candidate, the estimate is (equal positions) / 4 and the core cut (1 + 0.5) / 2 is exactly 0.75. ------

CHAIN = np.array([
    [1, 2, 3, 4],
    [1, 2, 3, 9],    # 3/4 = 0.75 with row 0: linked; best exactly the core -> NOT indexed
    [7, 8, 3, 9],    # 1/4 with row 0 (indexed), 2/4 with row 1 (not indexed): alone, indexed
    [7, 8, 5, 6],    # 2/4 = exactly the threshold with row 2: linked; best 0.5 < 0.75 -> indexed
    [10, 11, 5, 6],  # 2/4 with row 3 (indexed), nothing with row 2: linked to row 3
], dtype=np.uint32)


def test_lsh_link_banding_for_the_chain() -> None:
    assert lsh_params(0.5, 4) == (4, 1)  # target 0.4: r = 1 -> 0.25 fits, r = 2 -> 0.7071 does not


def test_lsh_link_threshold_and_core_cut() -> None:
    assert lsh_link(CHAIN, 0.5).labels().tolist() == [0, 0, 2, 2, 2]


def test_lsh_link_follows_the_given_order() -> None:
    """Row 1 first: it is indexed (it matched nothing), row 2 then joins it at 0.5 and row 0 at 0.75."""
    assert lsh_link(CHAIN, 0.5, order=[1, 2, 0, 3, 4]).labels().tolist() == [0, 0, 0, 0, 0]


def test_lsh_link_asks_verify_only_for_pairs_at_the_threshold() -> None:
    calls: list[tuple[int, int]] = []

    def verify(i: int, j: int) -> bool:
        calls.append((i, j))
        return (i, j) != (4, 3)

    assert lsh_link(CHAIN, 0.5, verify=verify).labels().tolist() == [0, 0, 2, 2, 4]
    assert calls == [(1, 0), (3, 2), (4, 3)]  # (2, 0) is a candidate at 0.25: never asked
    assert lsh_link(CHAIN, 0.5, verify=lambda i, j: False).labels().tolist() == [0, 1, 2, 3, 4]


def test_lsh_link_index_cap() -> None:
    """With room for one indexed row, row 1 (no match) is not indexed, so row 2 (0.75 with row 1) stays
    alone, while row 3 (0.75 with the indexed row 0) still joins it."""
    sigs = np.array([[1, 2, 3, 4], [5, 6, 7, 8], [5, 6, 7, 9], [1, 2, 3, 8]], dtype=np.uint32)
    assert lsh_link(sigs, 0.5, max_indexed=1).labels().tolist() == [0, 1, 2, 0]
    assert lsh_link(sigs, 0.5, max_indexed=2).labels().tolist() == [0, 1, 1, 0]


def test_lsh_link_extends_the_callers_union_find() -> None:
    uf = UnionFind(5)
    uf.union(1, 2)
    assert lsh_link(CHAIN, 0.5, union_find=uf) is uf
    assert uf.labels().tolist() == [0, 0, 0, 0, 0]
    assert lsh_link(np.zeros((0, 4), dtype=np.uint32), 0.5).labels().tolist() == []


# --- masking and words ------------------------------------------------------------------------------------


def test_template_masking_by_hand() -> None:
    """Lower case, every dynamic span -> '#', runs of white space -> one space, ends stripped, no NFKC."""
    assert mask_dynamic("Order 12 on 2026-01-02,  OK\tthen ") == "order # on #, ok then"
    assert mask_dynamic("Ｆｕｌｌ") == "ｆｕｌｌ"
    assert mask_dynamic("") == "" and mask_dynamic(None) == ""


def test_volatile_masking_by_hand() -> None:
    """NFKC, lower case, a UUID -> one space; white space is kept as it is (words split it later)."""
    text = " A  Ｆ 550e8400-e29b-41d4-a716-446655440000 x\t"
    assert VOLATILE_MASKING(text) == " a  f   x\t"
    assert dd.normalize(text) == " a  f   x\t"
    assert dd.normalize("") == ""


def test_masking_skips_texts_without_the_needed_character() -> None:
    """`needs` is a pre-filter: a text without it is not scanned at all (here a span without it shows that)."""
    digits = Masking(re.compile(r"\d+"), "#", needs="-")
    assert digits("A1-2") == "a#-#"
    assert digits("A1 2") == "a1 2"
    assert Masking(re.compile(r"\d+"), "#")("A1 2") == "a# #"


def test_word_patterns_on_ascii_and_unicode() -> None:
    assert words("it's 2 o'clock, ok?", TEMPLATE_WORDS) == ["it's", "2", "o'clock", "ok"]
    assert words("Hello, world_1 x-y!", UNICODE_WORDS) == ["Hello", "world_1", "x", "y"]
    assert words("naïve café, x-y", UNICODE_WORDS) == ["naïve", "café", "x", "y"]
    assert words("café #1's", TEMPLATE_WORDS) == ["caf", "#1's"]


def test_a_lone_surrogate_is_never_a_word() -> None:
    """JSON may carry a lone surrogate (\\ud800): `\\w+` skips it, so every word encodes as UTF-8."""
    assert dd.words("a\ud800b café") == ["a", "b", "café"]
    assert dd.shingles("x \ud800 y") == [b"x y"]
    assert dd.exact_key("x \ud800 y") == dd.exact_key("x y")


# --- shingle hashings against plain-Python references ------------------------------------------------------


def rolling_reference(tokens: list[str], k: int) -> list[int]:
    """xxh32 per word, Horner's rule with the FNV prime mod 2^64 over each k-window, folded to 32 bits."""
    if not tokens:
        return []
    k = min(k, len(tokens))
    hashes = [xxhash.xxh32_intdigest(w.encode()) for w in tokens]
    out = set()
    for s in range(len(tokens) - k + 1):
        acc = 0
        for h in hashes[s : s + k]:
            acc = (acc * 0x100000001B3 + h) & M64
        out.add((acc ^ (acc >> 32)) & 0xFFFFFFFF)
    return sorted(out)


@pytest.mark.parametrize("tokens", [
    ["the", "quick", "brown", "fox", "jumps", "the", "quick", "brown"],  # a repeated shingle counted once
    ["a", "b"],  # shorter than k: one shingle of all its words
    ["only"],
    ["café", "naïve", "x", "y"],
])
def test_rolling_shingles_against_the_reference(tokens: list[str]) -> None:
    hasher = ShingleHasher(3)
    assert hasher.hashing == "rolling"  # the default
    got = hasher.shingles(tokens)
    assert got.dtype == np.uint32 and got.tolist() == rolling_reference(tokens, 3)
    assert hasher.shingles(tokens).tolist() == got.tolist()  # again, from the word cache


def test_rolling_shingles_of_no_words() -> None:
    got = ShingleHasher(3).shingles([])
    assert got.dtype == np.uint32 and got.shape == (0,)


def test_joined_shingles_are_xxh32_of_the_joined_grams() -> None:
    hasher = ShingleHasher(3, "joined")
    assert hasher.grams(["a", "b", "c", "d"]) == [b"a b c", b"b c d"]
    assert hasher.grams(["café", "b", "c"]) == ["café b c".encode()]
    assert hasher.grams(["a", "b"]) == [b"a b"] and hasher.grams([]) == [b""]
    got = hasher.shingles(["a", "b", "c", "d", "a", "b", "c"])
    assert got.dtype == np.uint32
    assert got.tolist() == sorted({xxhash.xxh32_intdigest(g) for g in (b"a b c", b"b c d", b"c d a", b"d a b")})


def test_shingle_hashing_names_are_checked() -> None:
    with pytest.raises(ValueError, match="hashing must be 'rolling' or 'joined', not 'bogus'"):
        ShingleHasher(3, "bogus")  # type: ignore[arg-type]
    assert ShingleHasher(2, "joined").hashing == "joined" and ShingleHasher(2, "joined").k == 2


# --- union-find -----------------------------------------------------------------------------------------


def test_union_find_roots_sizes_and_labels() -> None:
    """Union by size: the larger tree's root stays the root, the first argument's on a tie; labels are
    the smallest member whatever the root."""
    uf = UnionFind(6)
    uf.union(3, 2)  # tie: 3 is the root
    assert uf.find(2) == 3 and uf.find(3) == 3
    uf.union(1, 2)  # 1 alone (size 1) under the larger {2, 3}
    assert uf.find(1) == 3 and uf.size[3] == 3
    uf.union(3, 1)  # already one set: nothing changes
    assert uf.size[3] == 3
    labels = uf.labels()
    assert labels.dtype == np.int64 and labels.tolist() == [0, 1, 1, 1, 4, 5]
    assert uf.size.dtype == np.int64  # counts


# --- MinHasher ------------------------------------------------------------------------------------------


def test_minhasher_defaults_are_datasketchs() -> None:
    """64 permutations, seed 1, an empty set as all 2^32 - 1, like `MinHash(num_perm=64)`."""
    sets = [np.array([3, 9, 27], dtype=np.uint32), np.array([4, 9], dtype=np.uint32), np.zeros(0, np.uint32)]
    got = MinHasher().signatures(sets)
    expected = []
    for s in sets:
        m = MinHash(num_perm=64, seed=1, hashfunc=int)
        if s.size:
            m.update_batch([int(x) for x in s])
        expected.append(m.hashvalues)
    assert got.dtype == np.uint32 and got.shape == (3, 64)
    assert np.array_equal(got, np.array(expected, dtype=np.uint32))


def test_minhasher_lean_keeps_its_seed_and_values() -> None:
    row = np.array([5, 6, 7, 8], dtype=np.uint32)
    lean = MinHasher(4, seed=7).lean(row)
    assert lean.seed == 7 and np.array_equal(lean.hashvalues, row)


def test_jaccard_of_single_hashes() -> None:
    """A hash above every hash of a one-hash set is looked up past its end: no match, not an error."""
    assert dd.jaccard(np.array([5], np.uint32), np.array([3], np.uint32)) == 0.0
    assert dd.jaccard(np.array([3], np.uint32), np.array([3, 5], np.uint32)) == 0.5


# --- the banding each dedup pass uses, on planted signatures -------------------------------------------------


def planted_pair(equal: range) -> tuple[list[np.ndarray], np.ndarray]:
    """Two identical hash sets (J = 1) whose 128-value signatures agree only at the `equal` positions,
    so they are LSH candidates exactly when one band lies inside `equal`."""
    sets = [np.arange(10, dtype=np.uint32), np.arange(10, dtype=np.uint32)]
    sigs = np.arange(256, dtype=np.uint32).reshape(2, 128)
    sigs[1, list(equal)] = sigs[0, list(equal)]
    return sets, sigs


def test_near_duplicate_pairs_band_with_20_x_6_or_the_given_params() -> None:
    cfg = dd.DedupConfig()
    sets, sigs = planted_pair(range(114, 120))  # band 19 of 20 x 6 and nothing else
    assert dd.near_duplicate_pairs(sets, sigs, cfg) == [(0, 1, 1.0)]
    assert dd.near_duplicate_pairs(sets, sigs, cfg, params=(5, 25)) == []  # no band of 25 equal rows
    sets, sigs = planted_pair(range(124, 128))  # the last band of 32 x 4, inside no band of 20 x 6
    assert dd.near_duplicate_pairs(sets, sigs, cfg) == []
    assert dd.near_duplicate_pairs(sets, sigs, cfg, params=(32, 4)) == [(0, 1, 1.0)]


def test_cross_pairs_band_with_the_check_banding() -> None:
    """The leakage check's 32 x 4 finds a pair that shares only its last 4 values; 20 x 6 would not."""
    cfg = dd.DedupConfig()
    sets, sigs = planted_pair(range(124, 128))
    assert dd.cross_pairs(sets[:1], sigs[:1], sets[1:], sigs[1:], cfg) == [(0, 0, 1.0)]
    sets, sigs = planted_pair(range(120, 123))  # three values: no band of 4
    assert dd.cross_pairs(sets[:1], sigs[:1], sets[1:], sigs[1:], cfg) == []


def test_minhash_signatures_default_to_datasketchs_empty_signature() -> None:
    got = minhash_signatures([np.zeros(0, np.uint32), np.array([7], np.uint32)], 16, 1, chunk_shingles=8)
    one = MinHash(num_perm=16, seed=1, hashfunc=int)
    one.update(7)
    assert got.dtype == np.uint32
    assert got[0].tolist() == [2**32 - 1] * 16 and np.array_equal(got[1], one.hashvalues)


def test_dedup_signs_an_empty_hash_set_as_the_hash_zero() -> None:
    cfg = dd.DedupConfig()
    zero = MinHash(num_perm=128, seed=1, hashfunc=int)
    zero.update(0)
    got = dd.signatures_from_hashes([np.zeros(0, np.uint32), np.array([0], np.uint32)], cfg)
    assert np.array_equal(got[0], zero.hashvalues) and np.array_equal(got[1], zero.hashvalues)


def test_exact_key_is_xxh3_128_of_the_words_joined_by_a_space() -> None:
    """The key is stable across versions: the 128-bit xxh3 of the normalized words, one space apart."""
    assert dd.exact_key("Order #12, SHIPPED!") == xxhash.xxh3_128_digest(b"order 12 shipped")
    assert dd.text_features("Order #12, SHIPPED!")[0] == xxhash.xxh3_128_digest(b"order 12 shipped")


def test_each_scheme_builds_its_own_hashing() -> None:
    """dedup's scheme hashes joined n-grams (what datasketch is fed), task typing's rolls word hashes."""
    joined = dedup_shingles(3).hasher()
    assert (joined.hashing, joined.k) == ("joined", 3)
    assert joined.shingles(["a", "b", "c"]).tolist() == [xxhash.xxh32_intdigest(b"a b c")]
    rolling = TEMPLATE_SHINGLES.hasher()
    assert (rolling.hashing, rolling.k) == ("rolling", 3)
    assert rolling.shingles(["a", "b", "c"]).tolist() == rolling_reference(["a", "b", "c"], 3)
