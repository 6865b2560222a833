"""Dynamic spans: the per-request values (timestamps, dates, UUIDs, ids, counters) that break a
shared prompt prefix when they sit before the stable text.

`find_spans` locates candidate spans with regexes, most specific kind first; `mask` removes them.
Whether a span really is dynamic is decided from the data, not the regex: a block is dynamic when
the same masked text occurs with different raw values across requests (audit/cache.py). A
constant "Knowledge cutoff: 2024-06" therefore never counts as a prefix breaker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from pipeline.similarity import PREFIX_BREAKER_SPANS

# The candidate patterns live with the other dynamic-span sets in pipeline/similarity.py.
_PATTERNS = tuple((kind, re.compile(p)) for kind, p in PREFIX_BREAKER_SPANS)
KINDS = tuple(dict.fromkeys(kind for kind, _ in PREFIX_BREAKER_SPANS))
"""The span kinds, in a fixed order (a span's kind travels as its index)."""


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: str


# Chars searched on each side of a digit run: enough for "Monday, 12 September 2026" or the
# letters of a hex id before its first digit. Patterns see the real text around the window, so a
# match can never start or end mid-word because of it.
_CONTEXT = 40
# Digit runs whose windows overlap or touch (at most 2 * _CONTEXT other characters between them), as
# one match: one window per group, not a Python step per digit run.
_DIGIT_GROUPS = re.compile(rf"\d+(?:\D{{0,{2 * _CONTEXT}}}\d+)*")
# From this length an ASCII text's digit runs are found with numpy: the regex engine reads ~75 MB/s,
# and finding digits was most of the dynamic-span pass on the bench's 10 KB system prompts.
_NUMPY_MIN_CHARS = 512


def find_spans(text: str) -> list[Span]:
    """Non-overlapping candidate dynamic spans of `text`, in order.

    Every kind contains a digit, so the patterns only run on small windows around the
    digit-carrying chunks: the cost follows the amount of digits, not the length of the prompt.
    """
    if not text:
        return []
    n = len(text)
    spans: list[Span] = []
    for start, end in _digit_groups(text):
        spans.extend(_spans_in(text, max(0, start - _CONTEXT), min(n, end + _CONTEXT)))
    return spans


def _digit_groups(text: str) -> list[tuple[int, int]]:
    """(start, end) of each `_DIGIT_GROUPS` match."""
    if len(text) < _NUMPY_MIN_CHARS or not text.isascii():  # `\d` is any script's digit beyond ASCII
        return [m.span() for m in _DIGIT_GROUPS.finditer(text)]
    chars = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    digit = np.zeros(len(chars) + 2, dtype=bool)  # a non-digit on each side
    np.less(chars - np.uint8(48), 10, out=digit[1:-1])  # wraps below "0"
    edges = np.flatnonzero(digit[1:] != digit[:-1])
    if not edges.size:
        return []
    starts, ends = edges[0::2], edges[1::2]  # digit runs [start, end)
    cut = np.flatnonzero(starts[1:] - ends[:-1] > 2 * _CONTEXT)
    first = np.concatenate(([0], cut + 1))
    last = np.concatenate((cut, [len(ends) - 1]))
    return list(zip(starts[first].tolist(), ends[last].tolist(), strict=True))


def _spans_in(text: str, lo: int, hi: int) -> list[Span]:
    # Patterns search `text` itself between lo and hi, so \b sees the true neighbours.
    taken = bytearray(hi - lo)
    found: list[Span] = []
    for kind, pat in _PATTERNS:
        for m in pat.finditer(text, lo, hi):
            s, e = m.span()
            if e > s and not any(taken[s - lo : e - lo]):
                taken[s - lo : e - lo] = b"\x01" * (e - s)
                found.append(Span(s, e, kind))
    found.sort(key=lambda sp: sp.start)
    return found


def mask(text: str, spans: list[Span]) -> str:
    """`text` with every span removed (a single NUL marks where each was, so two texts that differ
    in the number of spans do not collide)."""
    if not spans:
        return text
    out = []
    pos = 0
    for sp in spans:
        out.append(text[pos : sp.start])
        out.append("\x00")
        pos = sp.end
    out.append(text[pos:])
    return "".join(out)


def removed(text: str, spans: list[Span]) -> str:
    """The span values, in order, joined by spaces (they move to the end of the prompt)."""
    return " ".join(text[sp.start : sp.end] for sp in spans)
