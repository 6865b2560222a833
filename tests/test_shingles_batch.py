"""The bucket pass's batch shingling: xxh32 over many byte ranges at once and the joined k-word
shingles of many documents equal the one-call-per-shingle reference (xxhash on each n-gram's bytes,
which is what datasketch's `MinHash(hashfunc=xxh32_intdigest)` is fed), and so do the MinHash
signatures built from them."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
import xxhash

from pipeline.dataset import dedup as dd
from pipeline.similarity import (
    TEMPLATE_WORDS,
    UNICODE_WORDS,
    ShingleHasher,
    joined_shingle_sets,
    joined_shingles,
    joined_words,
    words,
    xxh32_ranges,
)


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


@pytest.mark.parametrize("group_words", [1, 2, 5, 7, 64])
def test_shingle_groups_do_not_change_a_document(group_words: int) -> None:
    """Documents go in groups of about `group_words` words (for the CPU cache); groups of one word,
    of a few documents and of many, empty documents at their edges, give the same sets."""
    rnd = random.Random(group_words)
    vocabulary = ["a", "bb", "héllo", "w_1", "日本語"]
    docs = [" ".join(rnd.choice(vocabulary) for _ in range(rnd.choice([0, 0, 1, 4, 5, 6, 30])))
            for _ in range(300)]
    joined = [d.encode() for d in docs]
    one_group = joined_shingle_sets(joined, 5, group_words=1 << 30)
    got = joined_shingle_sets(joined, 5, group_words=group_words)
    assert len(got) == len(docs)
    for doc, a, b in zip(docs, one_group, got, strict=True):
        assert b.dtype == np.uint32
        assert a.tolist() == b.tolist() == _reference_shingles(doc.split(), 5).tolist(), doc


@pytest.mark.parametrize("pattern", [UNICODE_WORDS, TEMPLATE_WORDS])
def test_joined_words_are_the_words_joined(pattern: str) -> None:
    """The bytes path for ASCII text (`\\w+`) splits exactly where the regex does: every ASCII
    character, controls and the separators `str.split` treats as white space (0x1c-0x1f) included."""
    rnd = random.Random(11)
    ascii_chars = [chr(c) for c in range(128)]
    texts = ["", " ", "_", "__a b_", "x\x1cy\x1dz\x1e\x1fw", "tab\tsep\x0bvt\x0cff\rcr", "it's o'clock #1",
             "naïve café x-y", "x \ud800 y", "\u00a0nbsp\u2003em", "٢٠٢٦ digits"]
    texts += ["".join(rnd.choice(ascii_chars) for _ in range(rnd.randint(0, 60))) for _ in range(2_000)]
    for text in texts:
        assert joined_words(text, pattern) == " ".join(words(text, pattern)).encode(), repr(text)


def test_an_empty_document_is_the_hash_of_no_bytes_and_no_documents_is_nothing() -> None:
    assert joined_shingles([[]], 5)[1][0].tolist() == [xxhash.xxh32_intdigest(b"")]
    assert joined_shingles([], 5) == ([], [])
    assert joined_shingle_sets([b"", b"", b"a"], 5, group_words=1)[1].tolist() == [xxhash.xxh32_intdigest(b"")]


def test_texts_features_equal_the_one_text_functions() -> None:
    texts = ["", "   ", "Hello", "Hello, World! 2026-01-02T10:00:00Z id " + "a1b2c3d4-0000-1111-2222-333344445555",
             "Ünïcödé ﬁne text with ligatures and more than five words in it", "one two three four five six seven"]
    keys, sets = dd.texts_features(texts)
    for text, key, got in zip(texts, keys, sets, strict=True):
        assert key == dd.exact_key(text)
        assert got.tolist() == _reference_shingles(dd.words(text), 5).tolist()


# Segments whose edges test each normalization step at a line break: Greek final sigma (lower-casing
# looks at neighbours), a combining mark after the break (NFKC composes), full-width and ligature
# characters, a UUID and an ISO time ending at or starting after the break, a lone surrogate,
# punctuation-only and empty segments, ASCII beside non-ASCII (two word splitters).
_EDGE_SEGMENTS = ["", "   ", "!!!", "ΟΔΟΣ", "Αθήνα ΣΟΦΟΣ", "\u0301abc", "cafe", "ＦＵＬＬ ﬁne",
                  "id a1b2c3d4-0000-1111-2222-333344445555", "2026-01-02T10:00:00Z later", "x \ud800 y",
                  "plain ascii words one two three four five six", "tab\there", "ends with 2026-01-02"]


def test_segments_features_equal_the_features_of_the_joined_text() -> None:
    rnd = random.Random(5)
    texts = [[rnd.choice(_EDGE_SEGMENTS) for _ in range(3)] for _ in range(400)]
    texts += [[a, b, c] for a in _EDGE_SEGMENTS[:6] for b in _EDGE_SEGMENTS for c in _EDGE_SEGMENTS[3:8]]
    keys, sets, middle_keys = dd.segments_features(texts, 1)
    want_keys, want_sets = dd.texts_features(["\n".join(t) for t in texts])
    assert keys == want_keys
    assert [s.tolist() for s in sets] == [s.tolist() for s in want_sets]
    assert middle_keys == [dd.exact_key(t[1]) for t in texts]


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


def test_volatile_masking_prefilter_changes_nothing() -> None:
    """`VOLATILE_MASKING.needs` is a necessary condition: with or without it, the same masked text."""
    import dataclasses

    from pipeline.similarity import VOLATILE_MASKING

    unfiltered = dataclasses.replace(VOLATILE_MASKING, needs="")
    fragments = ["a1b2c3d4-0000-1111-2222-333344445555", "2026-01-02t10:00:00z", "2026-01-02 10:00", "2026-01-02",
                 "re-add", "x-ab-1", "12-34-5", "-12-3", "e3f9-", "٢٠٢٦-٠١-٠٢t10:00", "Ａ-ｂ", "UUID", "-", " ", "word"]
    rnd = random.Random(5)
    texts = ["".join(rnd.choice(fragments) for _ in range(rnd.randint(0, 8))) for _ in range(3_000)]
    assert sum(VOLATILE_MASKING(t) != t.lower() for t in texts) > 100  # spans were masked
    needs = VOLATILE_MASKING.needs
    assert isinstance(needs, re.Pattern)
    assert sum(needs.search(t.lower()) is None and "-" in t for t in texts) > 100  # and skipped
    for text in texts:
        assert VOLATILE_MASKING(text) == unfiltered(text), text
