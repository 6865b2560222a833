"""Exact and near-duplicate detection: normalized-text hashes, then MinHash LSH with exact verification.

Parameters (measured in shared/reference/dedup.md §3.3–3.4 on 100k docs with planted near-dups):
word 5-gram shingles of the normalized user + assistant text (the shared system prompt would
dominate the shingles and make every request of a task look alike), 128 permutations, and
`MinHashLSH(params=(20, 6))`. Twenty bands of six rows put the S-curve midpoint at
(1/20)^(1/6) ≈ 0.61, so a pair at Jaccard 0.8 becomes a candidate with probability
1 - (1 - 0.8^6)^20 ≈ 0.998 (0.9999 at 0.85); every candidate is then verified with the EXACT
Jaccard of the two shingle sets, so the low banding threshold costs no precision, only a few more
cheap verifications. The reference measured removal recall 0.9998 for (20, 6) and 0.994 for
(16, 8), against 0.87 for datasketch's own `threshold=0.8` banding (b=9, r=13, midpoint 0.84). We
started from (16, 8) and moved to (20, 6) after it missed a planted pair of the sample logs
(Jaccard 0.887, MinHash estimate 0.836, no band of 8 equal): on the sample's 3,628 answered
requests, (16, 8) found 388 of the 390 pairs at Jaccard >= 0.8 that brute force finds, (20, 6) all
390, in about the same time.

Everything below is the similarity kit (pipeline/similarity.py) with dedup's parameters
(`dedup_shingles`: NFKC + volatile spans masked, `\\w+` words, joined n-gram hashes; MinHash with
the empty-set signature of hash 0); this module only names them after `DedupConfig`.
Signatures are computed in bulk with numpy: each shingle is hashed once with xxh32, pre-mixed
with the MurmurHash3 finalizer and permuted with datasketch's own `affine32` parameters, then the
per-document minimum is a single `np.minimum.reduceat`. The result is bit-identical to
`datasketch.MinHash(num_perm, seed, hashfunc=xxhash.xxh32_intdigest)` fed the same shingles with
`update()` (tests check it), so the rows wrap into `LeanMinHash` and go into a `MinHashLSH` index.
Entry points for `make bench`: `signatures` (this bulk path), `signatures_update_loop` (datasketch,
one `MinHash.update()` per shingle: the floor) and `signatures_bulk` (datasketch's `MinHash.bulk`)
all return the same uint32 matrix for throughput comparisons; `find_near_duplicates` runs the whole
shingle-sign-LSH-verify path and `exact_pairs` is the brute-force exact-Jaccard truth for recall on
a sample.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import xxhash

from pipeline.similarity import (  # noqa: F401  (UnionFind, band_keys, could_reach, jaccard, exact_pairs: this module's API)
    VOLATILE_MASKING,
    MinHasher,
    ShingleHasher,
    ShingleScheme,
    UnionFind,
    affine32_permutations,
    band_keys,
    could_reach,
    dedup_shingles,
    exact_pairs,
    jaccard,
    joined_shingle_sets,
    lsh_cross_pairs,
    lsh_pairs,
)

# datasketch (which imports scipy and pandas, ~80 MB) is imported only by the functions that build
# its objects: the dataset stage's own path needs none, so its worker processes stay small.


@dataclass(frozen=True)
class DedupConfig:
    ngram: int = 5  # words per shingle
    num_perm: int = 128  # MinHash permutations
    bands: int = 20  # LSH bands (b); S-curve midpoint (1/b)^(1/r)
    rows: int = 6  # rows per band (r); bands * rows must not exceed num_perm
    threshold: float = 0.8  # exact Jaccard at or above which two examples are near-duplicates
    seed: int = 1  # datasketch permutation seed
    exact: bool = True  # drop exact duplicates (normalized-text hash); false keeps them
    near: bool = True  # drop near-duplicates (MinHash LSH); false keeps them
    # Leakage check and split grouping use a more sensitive banding (32 x 4: P(candidate | J=0.8)
    # = 1 - (1 - 0.8^4)^32 > 0.9999999), because a missed pair there is a silent leak.
    check_bands: int = 32
    check_rows: int = 4
    chunk_shingles: int = 8_192  # shingles per numpy block (chunk * num_perm * 4 bytes: 4 MB, cache-sized)


@cache
def _scheme(ngram: int) -> tuple[ShingleScheme, ShingleHasher]:
    scheme = dedup_shingles(ngram)
    return scheme, scheme.hasher()


def normalize(text: str) -> str:
    """NFKC (non-ASCII text only), lower case, volatile ids/timestamps masked."""
    return VOLATILE_MASKING(text)


def words(text: str) -> list[str]:
    """The word tokens (`\\w+`) of the normalized text."""
    return _scheme(5)[0].words(text)


def exact_key(text: str) -> bytes:
    """128-bit hash of the normalized word sequence: equal keys are exact duplicates (case, spacing,
    punctuation and volatile ids aside)."""
    return xxhash.xxh3_128_digest(_scheme(5)[0].joined(text))


def shingles(text: str, ngram: int = 5) -> list[bytes]:
    """Word n-grams of the normalized text; a text shorter than n words is one shingle."""
    scheme, hasher = _scheme(ngram)
    return hasher.grams(scheme.words(text))


def shingle_hashes(text: str, ngram: int = 5) -> np.ndarray:
    """Sorted unique xxh32 hashes of the shingles (what the signature and the exact Jaccard use)."""
    scheme, hasher = _scheme(ngram)
    return hasher.shingles(scheme.words(text))


def text_features(text: str, ngram: int = 5) -> tuple[bytes, np.ndarray]:
    """(`exact_key`, `shingle_hashes`) of one text, normalizing and splitting it once."""
    keys, sets = texts_features([text], ngram)
    return keys[0], sets[0]


def texts_features(texts: Sequence[str], ngram: int = 5) -> tuple[list[bytes], list[np.ndarray]]:
    """`text_features` of many texts at once: their exact keys and shingle hashes (the bucket pass's
    path: each text's words joined as bytes once, `ShingleScheme.joined`, and the shingles of many
    texts hashed in vectorized calls, `similarity.joined_shingle_sets`)."""
    scheme, _ = _scheme(ngram)
    return _joined_features([scheme.joined(t) for t in texts], ngram)


def segments_features(texts: Sequence[Sequence[str]], key_segment: int,
                      ngram: int = 5) -> tuple[list[bytes], list[np.ndarray], list[bytes]]:
    """`texts_features` of texts given as segments whose "\n"-join is the text, and the `exact_key`
    of each text's segment `key_segment`, normalizing each segment once. No step of the normalization
    crosses a line break (NFKC and lower-casing stop at it, the volatile spans and the words never
    hold one), so a text's joined words are its segments', in order."""
    scheme, _ = _scheme(ngram)
    segments = [[scheme.joined(s) for s in t] for t in texts]
    keys, sets = _joined_features([b" ".join(filter(None, words)) for words in segments], ngram)
    return keys, sets, [xxhash.xxh3_128_digest(words[key_segment]) for words in segments]


def _joined_features(joined: list[bytes], ngram: int) -> tuple[list[bytes], list[np.ndarray]]:
    """The exact keys and shingle hashes of texts' joined words (`ShingleScheme.joined`)."""
    return [xxhash.xxh3_128_digest(j) for j in joined], joined_shingle_sets(joined, ngram)


def permutations(cfg: DedupConfig) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's own affine32 (a, b) parameters for the config's (num_perm, seed), as uint32."""
    return affine32_permutations(cfg.num_perm, cfg.seed)


def minhasher(cfg: DedupConfig) -> MinHasher:
    """The config's MinHash: a text without words signs as the single shingle hash 0."""
    return MinHasher(cfg.num_perm, cfg.seed, cfg.chunk_shingles, empty="zero")


def signatures_from_hashes(hash_sets: Sequence[np.ndarray], cfg: DedupConfig) -> np.ndarray:
    """MinHash signatures (n_docs x num_perm, uint32) from per-document shingle hashes, in bulk."""
    return minhasher(cfg).signatures(hash_sets)


def signatures(texts: Iterable[str], cfg: DedupConfig) -> np.ndarray:
    """MinHash signatures of `texts` (bulk numpy path; bit-identical to datasketch with xxh32)."""
    return signatures_from_hashes([shingle_hashes(t, cfg.ngram) for t in texts], cfg)


def signatures_update_loop(texts: Iterable[str], cfg: DedupConfig) -> np.ndarray:
    """Reference floor for benchmarks: one datasketch `MinHash` per document, `update()` per shingle."""
    from datasketch import MinHash

    rows = []
    for t in texts:
        m = MinHash(num_perm=cfg.num_perm, seed=cfg.seed, hashfunc=xxhash.xxh32_intdigest, scheme="affine32")
        for s in set(shingles(t, cfg.ngram)):
            m.update(s)
        rows.append(m.hashvalues)
    return np.array(rows, dtype=np.uint32).reshape(-1, cfg.num_perm)


def signatures_bulk(texts: Iterable[str], cfg: DedupConfig) -> np.ndarray:
    """Reference for benchmarks: datasketch's own `MinHash.bulk` with xxh32 (no per-shingle Python call)."""
    from datasketch import MinHash

    sketches = MinHash.bulk(
        [shingles(t, cfg.ngram) for t in texts],
        num_perm=cfg.num_perm, seed=cfg.seed, hashfunc=xxhash.xxh32_intdigest, scheme="affine32",
    )
    return np.array([m.hashvalues for m in sketches], dtype=np.uint32).reshape(-1, cfg.num_perm)


def near_duplicate_pairs(
    hash_sets: Sequence[np.ndarray],
    sigs: np.ndarray,
    cfg: DedupConfig,
    *,
    threshold: float | None = None,
    params: tuple[int, int] | None = None,
) -> list[tuple[int, int, float]]:
    """Pairs (i < j, exact Jaccard) with Jaccard >= threshold: LSH candidates, verified exactly."""
    return lsh_pairs(hash_sets, sigs, cfg.threshold if threshold is None else threshold,
                     params or (cfg.bands, cfg.rows), cfg.seed)


def cross_pairs(
    query_hashes: Sequence[np.ndarray],
    query_sigs: np.ndarray,
    index_hashes: Sequence[np.ndarray],
    index_sigs: np.ndarray,
    cfg: DedupConfig,
    threshold: float | None = None,
) -> list[tuple[int, int, float]]:
    """(query i, index j, Jaccard) for every query doc with an index doc at Jaccard >= threshold.

    The leakage check: index = train, query = eval. Uses the sensitive check banding.
    """
    return lsh_cross_pairs(query_hashes, query_sigs, index_hashes, index_sigs,
                           cfg.threshold if threshold is None else threshold, (cfg.check_bands, cfg.check_rows), cfg.seed)


def find_near_duplicates(texts: Sequence[str], cfg: DedupConfig | None = None) -> list[tuple[int, int, float]]:
    """Near-duplicate pairs of `texts` end to end (shingle, sign in bulk, LSH, verify): the bench entry point."""
    cfg = cfg or DedupConfig()
    hash_sets = [shingle_hashes(t, cfg.ngram) for t in texts]
    return near_duplicate_pairs(hash_sets, signatures_from_hashes(hash_sets, cfg), cfg)
