"""Fingerprints for grouping prompts: dynamic-span masking, shingles, bulk MinHash, LSH linking.

Production prompts are templates: a system prompt with dynamic spans (dates, ids, numbers), a tool
set and a user message with slots. Masking the dynamic spans makes one template version hash to one
value; MinHash + LSH then links near-identical texts (prompt versions, templated user messages)
without comparing all pairs.

Signatures follow datasketch's `affine32` scheme exactly (32-bit shingle hash -> MurmurHash3
fmix32 -> `a*h + b mod 2^32` with datasketch's own `(a, b)` for the seed -> min), computed for many
documents at once in numpy: per-shingle Python work is the bottleneck (dedup.md §3.2), so the only
Python loop is over words (xxh32, cached), and k-shingle hashes are a numpy rolling combination of
word hashes. The rows wrap as `LeanMinHash` for `datasketch.MinHashLSH` and equal
`MinHash(num_perm, seed, hashfunc=int).update_batch(shingle_hashes)` bit for bit (tested).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import xxhash
from datasketch import LeanMinHash, MinHash, MinHashLSH

# One alternation, valid in both RE2 (DuckDB's regexp_replace) and Python `re`, applied to
# LOWER-CASED text. Order matters: longer, more specific spans first.
DYNAMIC_SPAN_PATTERNS: tuple[tuple[str, str], ...] = (
    ("uuid", r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
    ("iso_datetime", r"\d{4}-\d{2}-\d{2}(?:[t ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:z|[+-]\d{2}:?\d{2})?)?"),
    ("numeric_date", r"\b\d{1,2}[/.]\d{1,2}[/.]\d{2,4}\b"),
    (
        "month_date",
        r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.? \d{1,2}(?:st|nd|rd|th)?,? \d{4}\b"
        r"|\b\d{1,2}(?:st|nd|rd|th)? (?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?,? \d{4}\b",
    ),
    ("weekday", r"\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b"),
    ("clock_time", r"\b\d{1,2}:\d{2}(?::\d{2})?(?:\s?[ap]\.?m\.?)?"),
    ("email", r"[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}"),
    ("url_query", r"\?[a-z0-9_=&%.+-]+"),
    ("hex_id", r"\b[0-9a-f]{8,}\b"),
    ("prefixed_id", r"\b[a-z][a-z0-9]*[_-]?[0-9][a-z0-9_-]*\b"),
    ("number", r"\d+(?:[.,]\d+)*"),
)
DYNAMIC_SPAN_PATTERN = "|".join(f"(?:{p})" for _, p in DYNAMIC_SPAN_PATTERNS)
MASK = "#"
_DYNAMIC = re.compile(DYNAMIC_SPAN_PATTERN)
_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"[a-z0-9#]+(?:'[a-z]+)?")

_MAX_HASH = np.uint32(0xFFFFFFFF)


def mask_dynamic(text: str | None) -> str:
    """Lower-case `text`, replace dynamic spans (dates, ids, numbers, …) by `#`, collapse spaces.

    The SQL feature query does the same with DuckDB's `regexp_replace` on the same pattern; this
    Python twin exists for texts that never pass through SQL (tests, labels).
    """
    if not text:
        return ""
    return _SPACES.sub(" ", _DYNAMIC.sub(MASK, text.lower())).strip()


def words(text: str) -> list[str]:
    """Word tokens of (already masked, lower-cased) text; punctuation dropped."""
    return _WORD.findall(text)


class ShingleHasher:
    """Word k-shingle hashes as uint32 arrays; words are hashed once per hasher (cache)."""

    def __init__(self, k: int) -> None:
        self.k = k
        self._cache: dict[str, int] = {}

    def word_hashes(self, tokens: Sequence[str]) -> np.ndarray:
        cache = self._cache
        out = np.empty(len(tokens), dtype=np.uint64)
        for i, w in enumerate(tokens):
            h = cache.get(w)
            if h is None:
                h = cache[w] = xxhash.xxh32_intdigest(w.encode())
            out[i] = h
        return out

    def shingles(self, tokens: Sequence[str]) -> np.ndarray:
        """Distinct k-shingle hashes; a text shorter than k is one shingle of all its words."""
        if not tokens:
            return np.empty(0, dtype=np.uint32)
        wh = self.word_hashes(tokens)
        k = min(self.k, len(wh))
        n = len(wh) - k + 1
        # Polynomial rolling combination in uint64 (wrapping), then folded to 32 bits.
        acc = np.zeros(n, dtype=np.uint64)
        for j in range(k):
            acc = acc * np.uint64(0x100000001B3) + wh[j : j + n]
        folded = (acc ^ (acc >> np.uint64(32))) & np.uint64(0xFFFFFFFF)
        return np.unique(folded.astype(np.uint32))

    def cache_clear(self) -> None:
        self._cache.clear()


def _fmix32(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


class MinHasher:
    """Bulk MinHash signatures in datasketch's affine32 scheme (same permutations for `seed`)."""

    def __init__(self, num_perm: int = 64, seed: int = 1, chunk_shingles: int = 65_536) -> None:
        self.num_perm = num_perm
        self.seed = seed
        a, b = MinHash(num_perm=num_perm, seed=seed).permutations
        self._a = np.asarray(a, dtype=np.uint32)
        self._b = np.asarray(b, dtype=np.uint32)
        self._chunk = chunk_shingles

    def signatures(self, shingle_sets: Sequence[np.ndarray]) -> np.ndarray:
        """(len(shingle_sets), num_perm) uint32; an empty set gets the all-max 'empty' signature."""
        n = len(shingle_sets)
        sig = np.full((n, self.num_perm), _MAX_HASH, dtype=np.uint32)
        lengths = np.fromiter((len(s) for s in shingle_sets), dtype=np.int64, count=n)
        nonempty = np.flatnonzero(lengths)
        if not len(nonempty):
            return sig
        # Process documents in groups whose shingles fit one chunk, so memory stays bounded.
        start = 0
        while start < len(nonempty):
            stop, total = start, 0
            while stop < len(nonempty) and (total == 0 or total + lengths[nonempty[stop]] <= self._chunk):
                total += lengths[nonempty[stop]]
                stop += 1
            docs = nonempty[start:stop]
            flat = np.concatenate([shingle_sets[i] for i in docs]).astype(np.uint32, copy=False)
            mixed = _fmix32(flat)
            permuted = mixed[:, None] * self._a[None, :] + self._b[None, :]  # wraps mod 2^32
            offsets = np.concatenate(([0], np.cumsum(lengths[docs])[:-1]))
            sig[docs] = np.minimum.reduceat(permuted, offsets, axis=0)
            start = stop
        return sig

    def lean(self, row: np.ndarray) -> LeanMinHash:
        return LeanMinHash(seed=self.seed, hashvalues=row, scheme="affine32")


class UnionFind:
    """Union-find over 0..n-1 (path halving, union by size); roots are the smallest member."""

    def __init__(self, n: int) -> None:
        self.parent = np.arange(n, dtype=np.int64)
        self.size = np.ones(n, dtype=np.int64)

    def find(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    def union(self, i: int, j: int) -> None:
        ri, rj = self.find(i), self.find(j)
        if ri == rj:
            return
        if self.size[ri] < self.size[rj]:
            ri, rj = rj, ri
        self.parent[rj] = ri
        self.size[ri] += self.size[rj]

    def labels(self) -> np.ndarray:
        """Component label per element: the smallest index in its component."""
        roots = np.fromiter((self.find(i) for i in range(len(self.parent))), dtype=np.int64, count=len(self.parent))
        smallest = np.full(len(roots), len(roots), dtype=np.int64)
        np.minimum.at(smallest, roots, np.arange(len(roots)))
        return smallest[roots]


def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """Bands x rows with the S-curve midpoint (1/b)^(1/r) just below `threshold`.

    Candidates are verified afterwards, so the banding errs towards recall (dedup.md §3.3: a
    midpoint below the target and verification gives both precision and recall).
    """
    best: tuple[float, int, int] | None = None
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        midpoint = (1 / bands) ** (1 / rows)
        if midpoint <= threshold - 0.1:
            gap = threshold - 0.1 - midpoint
            if best is None or gap < best[0]:
                best = (gap, bands, rows)
    return (best[1], best[2]) if best else (num_perm, 1)


def lsh_link(
    signatures: np.ndarray,
    threshold: float,
    *,
    seed: int = 1,
    max_indexed: int = 250_000,
    order: Iterable[int] | None = None,
    union_find: UnionFind | None = None,
    verify: Callable[[int, int], bool] | None = None,
) -> UnionFind:
    """Link rows whose estimated Jaccard is >= `threshold`, through a datasketch MinHashLSH index.

    Query-then-insert: each row is linked to every indexed row it matches, and is indexed only if
    it matched none at >= (1 + threshold) / 2, so a dense cluster is represented by a few rows and
    the index stays far smaller than the input; `max_indexed` caps it (bounded memory; rows seen
    after the cap can still join existing rows but not start new ones). `verify(i, j)`, when
    given, must also accept a candidate pair (e.g. exact Jaccard) before it is linked.
    """
    n, num_perm = signatures.shape
    uf = union_find or UnionFind(n)
    if n == 0:
        return uf
    bands, rows = lsh_params(threshold, num_perm)
    lsh = MinHashLSH(num_perm=num_perm, params=(bands, rows))
    core = (1 + threshold) / 2
    indexed: list[int] = []
    for i in order if order is not None else range(n):
        sig = signatures[i]
        m = LeanMinHash(seed=seed, hashvalues=sig, scheme="affine32")
        best = 0.0
        for j in lsh.query(m):
            est = float(np.count_nonzero(signatures[j] == sig)) / num_perm
            if est >= threshold and (verify is None or verify(i, j)):
                uf.union(i, j)
                best = max(best, est)
        if best < core and len(indexed) < max_indexed:
            lsh.insert(i, m, check_duplication=False)
            indexed.append(i)
    return uf


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard of two distinct-hash arrays."""
    if not len(a) and not len(b):
        return 1.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)
