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

# Order matters: the first pattern to claim a character wins, so timestamps beat dates beat numbers.
_KINDS: tuple[tuple[str, str], ...] = (
    ("timestamp", r"\b\d{4}-\d{2}-\d{2}[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:\s?(?:Z|UTC|[+-]\d{2}:?\d{2}))?"),
    ("uuid", r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
    ("timestamp", r"\b1[5-9]\d{8}(?:\d{3})?\b"),  # epoch seconds / milliseconds (2017-2033)
    ("date", r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b"),
    ("date", r"\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,?\s+\d{1,2}\s+(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\s+\d{4}\b"),
    ("date", r"\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4}\b"),
    ("time", r"\b\d{1,2}:\d{2}(?::\d{2})?(?:\s?[AaPp][Mm])?\b"),
    ("id", r"\b[0-9a-fA-F]{12,}\b"),  # hex digests, trace ids
    ("id", r"\b[A-Za-z][A-Za-z0-9]*[_-](?:[A-Za-z0-9]+[_-])*[A-Za-z0-9]*\d[A-Za-z0-9]*\b"),  # user_123, sess-9f2c
    ("id", r"\b(?=[A-Za-z0-9]*\d)(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{10,}\b"),  # opaque tokens
    ("counter", r"\b\d+\b"),
)
_PATTERNS = tuple((kind, re.compile(p)) for kind, p in _KINDS)
_ANY_DIGIT = re.compile(r"\d")


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: str


_DIGITS = re.compile(r"\d+")
# Chars searched on each side of a digit run: enough for "Monday, 12 September 2026" or the
# letters of a hex id before its first digit. Patterns see the real text around the window, so a
# match can never start or end mid-word because of it.
_CONTEXT = 40


def find_spans(text: str) -> list[Span]:
    """Non-overlapping candidate dynamic spans of `text`, in order.

    Every kind contains a digit, so the patterns only run on small windows around the
    digit-carrying chunks: the cost follows the amount of digits, not the length of the prompt.
    """
    if not text or not _ANY_DIGIT.search(text):
        return []
    windows: list[list[int]] = []
    for m in _DIGITS.finditer(text):
        lo, hi = max(0, m.start() - _CONTEXT), min(len(text), m.end() + _CONTEXT)
        if windows and lo <= windows[-1][1]:
            windows[-1][1] = max(windows[-1][1], hi)
        else:
            windows.append([lo, hi])
    spans: list[Span] = []
    for lo, hi in windows:
        spans.extend(_spans_in(text, lo, hi))
    return spans


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
