"""The bucket pass's batch shingling: xxh32 over many byte ranges at once and the joined k-word
shingles of many documents equal the one-call-per-shingle reference (xxhash on each n-gram's bytes,
which is what datasketch's `MinHash(hashfunc=xxh32_intdigest)` is fed), and so do the MinHash
signatures built from them."""

from __future__ import annotations

import random

import numpy as np
import pytest
import xxhash

from pipeline.dataset import dedup as dd
from pipeline.similarity import ShingleHasher, joined_shingles, xxh32_ranges


def _reference_shingles(tokens: list[str], k: int) -> np.ndarray:
    grams = ShingleHasher(k, "joined").grams(tokens)
    return np.unique(np.array([xxhash.xxh32_intdigest(g) for g in grams], dtype=np.uint32))


@pytest.mark.parametrize("seed", [0, 1, 2**31 + 5, 2**32 - 1])
def test_xxh32_ranges_equal_xxhash_on_every_slice(seed: int) -> None:
    rng = np.random.default_rng(seed & 0xFFFF)
    buf = rng.integers(0, 256, 3_000, dtype=np.uint8).tobytes()
    # Every length from 0 to 70 (no stripe, one, several; every 4-byte and single-byte tail),
    # plus long ranges of many stripes, at every alignment.
    lengths = np.concatenate((np.arange(71), rng.integers(0, 1_500, 400)))
    starts = rng.integers(0, 1_400, lengths.size)
    got = xxh32_ranges(buf, starts, lengths, seed)
    expected = [xxhash.xxh32_intdigest(buf[s:s + n], seed) for s, n in zip(starts.tolist(), lengths.tolist(), strict=True)]
    assert got.dtype == np.uint32
    assert got.tolist() == expected


def test_xxh32_ranges_of_the_whole_buffer_and_of_nothing() -> None:
    buf = b"the quick brown fox jumps over the lazy dog"
    assert xxh32_ranges(buf, np.array([0]), np.array([len(buf)])).tolist() == [xxhash.xxh32_intdigest(buf)]
    assert xxh32_ranges(buf, np.array([len(buf)]), np.array([0])).tolist() == [xxhash.xxh32_intdigest(b"")]
    assert xxh32_ranges(buf, np.zeros(0, np.int64), np.zeros(0, np.int64)).size == 0


@pytest.mark.parametrize("k", [1, 3, 5])
def test_joined_shingles_equal_one_hash_per_gram(k: int) -> None:
    rnd = random.Random(k)
    vocabulary = ["a", "bb", "héllo", "日本語", "w_1", "long" * 9, "ß", "ﬁ", "😀x"]
    docs = [[], ["only"], ["two", "words"], ["w"] * k, ["w"] * (k + 1), ["a", "b"] * 20]
    docs += [[rnd.choice(vocabulary) for _ in range(rnd.randint(0, 40))] for _ in range(500)]
    joined, sets = joined_shingles(docs, k)
    assert len(sets) == len(docs)
    for tokens, text, got in zip(docs, joined, sets, strict=True):
        assert text == " ".join(tokens).encode()
        assert got.dtype == np.uint32
        assert got.tolist() == _reference_shingles(tokens, k).tolist(), tokens


def test_an_empty_document_is_the_hash_of_no_bytes_and_no_documents_is_nothing() -> None:
    assert joined_shingles([[]], 5)[1][0].tolist() == [xxhash.xxh32_intdigest(b"")]
    assert joined_shingles([], 5) == ([], [])


def test_texts_features_equal_the_one_text_functions() -> None:
    texts = ["", "   ", "Hello", "Hello, World! 2026-01-02T10:00:00Z id " + "a1b2c3d4-0000-1111-2222-333344445555",
             "Ünïcödé ﬁne text with ligatures and more than five words in it", "one two three four five six seven"]
    keys, sets = dd.texts_features(texts)
    for text, key, got in zip(texts, keys, sets, strict=True):
        assert key == dd.exact_key(text)
        assert got.tolist() == _reference_shingles(dd.words(text), 5).tolist()


def test_signatures_of_a_random_block_equal_datasketch() -> None:
    from datasketch import MinHash

    cfg = dd.DedupConfig(chunk_shingles=64)  # small chunks: documents span several blocks
    rnd = random.Random(3)
    vocabulary = [f"w{i}" for i in range(60)]
    texts = ["", "one", "one two three four five"]
    texts += [" ".join(rnd.choice(vocabulary) for _ in range(rnd.randint(1, 80))) for _ in range(200)]
    _, sets = dd.texts_features(texts)
    got = dd.signatures_from_hashes(sets, cfg)
    for text, row in zip(texts, got, strict=True):
        m = MinHash(num_perm=cfg.num_perm, seed=cfg.seed, hashfunc=xxhash.xxh32_intdigest, scheme="affine32")
        m.update_batch(dd.shingles(text))
        assert row.tolist() == m.hashvalues.tolist(), text
