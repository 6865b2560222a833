"""The redaction detectors' necessary conditions (`min_digits`, `needs`) skip scans that cannot
match; they must never change what is found. Checked against the same detectors without them on
planted values, values cut or grown by one character (just inside and just outside each shape),
other scripts' digits (`\\d` matches them; the digit count only reads ASCII text) and random
strings over the characters the shapes are made of."""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Iterator
from re import _constants as _C  # type: ignore[attr-defined]
from re import _parser  # type: ignore[attr-defined]

import pytest

from pipeline.dataset import redact

PLAIN = tuple(dataclasses.replace(d, min_digits=0, needs=None) for d in redact.DETECTORS)
PLANTED = [
    "call +44 20 7946 0958 today", "ssn 123-45-6789", "host 10.0.0.1 up", "fe80:0:0:0:202:b3ff:fe1e:8329",
    "card 4111 1111 1111 1111", "NINO AB 12 34 56 C", "(415) 555-2671", "phone: 0412 345 678",
    "AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY.",
    "social security number 123 45 6789", "ssn ١٢٣-٤٥-٦٧٨٩", "card ٤١١١ ١١١١ ١١١١ ١١١١", "2001:db8:85a3:0:0:8a2e:370:7334",
]


def _found(text: str, detectors: tuple[redact.Detector, ...]) -> list[tuple]:
    return [(f.kind, f.start, f.end, f.value) for f in redact.find_sensitive(text, detectors)]


def test_prefilters_never_change_findings() -> None:
    rng = random.Random(15)
    texts = list(PLANTED)
    alphabet = "0123456789-. :+()/ABCDEFabcdefKLMNPRSTWZ٣٤_@=\n"
    for base in PLANTED:
        for i in range(len(base) + 1):
            texts.append(base[:i] + base[i + 1:])  # one character shorter
            texts.append(base[:i] + rng.choice(alphabet) + base[i:])  # one longer
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 50))) for _ in range(20_000)]
    kinds_found: set[str] = set()
    for text in texts:
        with_prefilters = _found(text, redact.DETECTORS)
        assert with_prefilters == _found(text, PLAIN), text
        kinds_found.update(k for k, *_ in with_prefilters)
    prefiltered = {d.kind for d in redact.DETECTORS if d.min_digits or d.needs}
    assert prefiltered <= kinds_found  # every prefiltered detector was exercised with real findings


def test_digit_count_only_reads_ascii_text() -> None:
    assert redact._ascii_digit_count("a1b22") == 3
    assert redact._ascii_digit_count("١٢٣ 45") > 10**6  # unknown: never skips a detector
    assert redact._b64_run(4)("ab/+") and not redact._b64_run(4)("ab/=") and not redact._b64_run(2)("é")


def test_necessary_patterns_and_base64_runs_at_their_edges() -> None:
    """`_searches` and `_b64_run` build the prefilters: each just inside and just outside its shape."""
    ssn_tail = redact._searches(r"-\d{2}-\d{4}")
    assert ssn_tail("ssn 123-45-6789") and not ssn_tail("ssn 123-45-678") and not ssn_tail("")
    forty = redact._b64_run(40)
    run = "A1/+" * 10
    assert forty(f"x {run} y") and forty(run) and forty(f"é{run}é")
    assert not forty(run[:39]) and not forty(f"{run[:20]}={run[20:39]}") and not forty(f"{run[:20]}é{run[20:]}")
    assert redact._b64_run(3)("\ud800abc") and not redact._b64_run(4)("\ud800abc")  # a lone surrogate is no error
    assert redact._ascii_digit_count("") == 0 and redact._ascii_digit_count("7") == 1


class CountingPattern:
    """A detector pattern that counts its scans (and, for a keyword detector, its tries at a
    keyword): a prefilter's whole point is the scan it skips."""

    def __init__(self, pattern: str) -> None:
        self.compiled = re.compile(pattern)
        self.scans = 0
        self.tries = 0

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        self.scans += 1
        return self.compiled.finditer(text)

    def match(self, text: str, pos: int) -> re.Match[str] | None:
        self.tries += 1
        return self.compiled.match(text, pos)


def scans(text: str, **prefilter: object) -> tuple[int, list[str]]:
    """(scans, values found) of a digits detector with the given prefilter, on `text`."""
    pattern = CountingPattern(r"\d+")
    det = redact.Detector("DIGITS", "pii", pattern, **prefilter)  # type: ignore[arg-type]
    values = [f.value for f in redact.find_sensitive(text, (det,))]
    return pattern.scans, values


def test_each_prefilter_skips_the_scan_exactly_when_its_condition_fails() -> None:
    assert scans("a 12", gate="@") == (0, []) and scans("a@ 12", gate="@") == (1, ["12"])
    assert scans("a 12", min_digits=3) == (0, []) and scans("a 123", min_digits=3) == (1, ["123"])
    assert scans("a 12 3", min_digits=3) == (1, ["12", "3"])  # digits counted over the whole text
    assert scans("é 12", min_digits=3) == (1, ["12"])  # not ASCII: never skipped by the count
    assert scans("a 12", needs=lambda t: "#" in t) == (0, []) and scans("#12", needs=lambda t: "#" in t) == (1, ["12"])
    assert scans("a 12") == (1, ["12"])  # no prefilter: always scanned


def keyword_scans(text: str) -> tuple[int, int, list[str]]:
    """(whole-text scans, tries at a keyword, values found) of a detector whose matches start with
    `call` or `tel` (any case), on `text`."""
    pattern = CountingPattern(r"(?:[Cc](?i:all)|[Tt](?i:el))\W*(\d+)")
    det = redact.Detector("CALL", "pii", pattern, 1, gate=("call", "tel"))  # type: ignore[arg-type]
    values = [f.value for f in redact.find_sensitive(text, (det,))]
    return pattern.scans, pattern.tries, values


def test_keyword_detectors_are_tried_only_where_a_keyword_starts() -> None:
    assert keyword_scans("ring 12") == (0, 0, [])  # no keyword: not scanned at all
    assert keyword_scans("Call 12") == (0, 1, ["12"])
    assert keyword_scans("TEL 12") == (0, 1, ["12"])  # the second keyword, any case
    # Every start is tried once, in text order; one inside another word too ("recall").
    assert keyword_scans("call x, tel 7 recall 9") == (0, 3, ["7", "9"])
    # A start inside the previous match is not tried: finditer resumes after a match.
    assert keyword_scans("tel call 5") == (0, 2, ["5"])  # "tel" fails ("c" is no digit), then "call 5"
    assert keyword_scans("call tel 5 tel 6") == (0, 3, ["5", "6"])
    # Not ASCII (lower-casing may move offsets): the whole text is scanned once the keyword is in it.
    assert keyword_scans("é Call 12") == (1, 0, ["12"]) and keyword_scans("é ring 12") == (0, 0, [])


def test_prefilters_of_several_detectors_share_one_text() -> None:
    """The lower-cased text and the digit count are computed once and reused by later detectors."""
    first, second = CountingPattern(r"[Xx] \d+"), CountingPattern(r"[Yy][a-z]*")
    dets = (redact.Detector("D", "pii", first, gate=("x",), min_digits=2),  # type: ignore[arg-type]
            redact.Detector("W", "pii", second, gate=("y",), min_digits=3))  # type: ignore[arg-type]
    assert [f.value for f in redact.find_sensitive("X 12 y", dets)] == ["X 12"]  # 2 digits: W is skipped
    assert (first.tries, second.tries) == (1, 0)
    assert [f.value for f in redact.find_sensitive("X 123 yes", dets)] == ["X 123", "yes"]
    assert (first.tries, second.tries) == (2, 1)


KEYWORD_DETECTORS = [d for d in redact.DETECTORS if isinstance(d.gate, tuple)]


@pytest.mark.parametrize("det", KEYWORD_DETECTORS, ids=lambda d: f"{d.kind}:{d.gate[0]}")  # type: ignore[index]
def test_keyword_detectors_match_only_from_their_keywords(det: redact.Detector) -> None:
    """What makes the keyword scan exact: every match of the pattern starts with one of the gate's
    keywords. Checked against the same pattern scanned at every offset (no gate), on ASCII texts of
    keywords, near-keywords (other first letters, which the old phone and password patterns took:
    `wall`, `mall`, `cassword`), values, separators and line breaks."""
    rng = random.Random(det.kind)
    assert isinstance(det.gate, tuple)
    near = ["wall", "mall", "tax", "tell", "fell", "cassword", "sassword", "apass", "secrets", "ssnx", "awsome",
            "bearerx", "social  security", "recall", "hotel", "Tel.", "CALL ME AT", "PASSWORD", "Api-Key", "Secret_Key",
            "client_secret", "private-token", "access_token", "auth-token", "passphrase", "pwd", "whatsapp", "fax"]
    middles = ["", " ", " secret", "_secret_access_key", " sk", " number", " me at", ":", "\n"]
    separators = ["", " ", "\n", ": ", "=", "=> ", '"=', "'", " is "]
    values = ["0412 345 678", "123-45-6789", "123 45 6789", "123456789", "+44 20 7946 0958", "hunter2x!",
              "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "abcdefghijklmnopqrstuvwxyz012345"]
    filler = ["", " ", "x", "\n", "ok ", *near]

    def text() -> str:
        keyword = rng.choice(det.gate if rng.random() < 0.6 else near)  # type: ignore[arg-type]
        if rng.random() < 0.5:
            keyword = keyword.upper() if rng.random() < 0.5 else keyword.title()
        return "".join([rng.choice(filler), keyword, rng.choice(middles), rng.choice(separators), rng.choice(values),
                        rng.choice([" ", ""]), rng.choice(filler), rng.choice([*det.gate, *near]),  # type: ignore[misc]
                        rng.choice(values)])

    texts = [text() for _ in range(6_000)]
    unanchored = dataclasses.replace(det, gate=None)
    found = 0
    for text in texts:
        got = _found(text, (det,))
        assert got == _found(text, (unanchored,)), text
        found += bool(got)
    assert found >= 15  # the detector found values: the comparison was not vacuous


def test_keyword_patterns_take_the_keyword_not_a_word_that_ends_like_it() -> None:
    """Precision at the keyword's edge: `call`/`password` (just inside) are keywords, `wall`/`cassword`
    (one letter off) are not; before, the first letter was a class shared by every keyword."""
    def kinds(text: str) -> list[tuple[str, str]]:
        return [(f.kind, f.value) for f in redact.find_sensitive(text)]

    assert kinds("call 0412 345 678") == [("PHONE", "0412 345 678")]
    assert kinds("wall 0412 345 678") == kinds("mall 0412 345 678") == kinds("tax 0412 345 678") == []
    assert kinds("Telephone: 0412 345 678") == [("PHONE", "0412 345 678")]
    assert kinds("password=hunter2x!") == [("SECRET", "hunter2x!")]
    assert kinds("cassword=hunter2x!") == kinds("apass=hunter2x!") == []
    assert kinds("client_secret: s3cr3t-value") == [("SECRET", "s3cr3t-value")]


# --- paragraph by paragraph (CachedRedactor.findings) ------------------------------------------------

_NEWLINE_CATEGORIES = {_C.CATEGORY_SPACE: True, _C.CATEGORY_NOT_SPACE: False, _C.CATEGORY_DIGIT: False,
                       _C.CATEGORY_NOT_DIGIT: True, _C.CATEGORY_WORD: False, _C.CATEGORY_NOT_WORD: True,
                       _C.CATEGORY_LINEBREAK: True, _C.CATEGORY_NOT_LINEBREAK: False}


def _class_has_newline(items: list) -> bool:
    negate = bool(items) and items[0][0] is _C.NEGATE
    hit = any((op is _C.LITERAL and av == 10) or (op is _C.RANGE and av[0] <= 10 <= av[1])
              or (op is _C.CATEGORY and _NEWLINE_CATEGORIES[av]) for op, av in items)
    return hit != negate


def _consumes_newline(items: object, dotall: bool = False) -> bool:
    """Whether the parsed pattern can consume a line break (lookarounds consume nothing: skipped)."""
    for op, av in items:  # type: ignore[attr-defined]
        if ((op is _C.LITERAL and av == 10) or (op is _C.NOT_LITERAL and av != 10) or (op is _C.ANY and dotall)
                or (op is _C.IN and _class_has_newline(av))):
            return True
        if op in (_C.MAX_REPEAT, _C.MIN_REPEAT, _C.POSSESSIVE_REPEAT) and _consumes_newline(av[2], dotall):
            return True
        if op is _C.SUBPATTERN and _consumes_newline(av[3], dotall or bool(av[1] & _C.SRE_FLAG_DOTALL)):
            return True
        if op is _C.BRANCH and any(_consumes_newline(b, dotall) for b in av[1]):
            return True
        if op is _C.ATOMIC_GROUP and _consumes_newline(av, dotall):
            return True
        if op is _C.GROUPREF:
            return True  # whatever the group held: assume the worst
    return False


def test_detectors_marked_line_bound_never_match_a_line_break() -> None:
    """What makes the paragraph scan exact: a detector not marked `multiline` consumes no line
    break, so its matches lie inside one paragraph. Checked on the parsed pattern, so a new
    detector that can match one fails here until it is marked."""
    for det in redact.DETECTORS:
        parsed = _parser.parse(det.pattern.pattern, det.pattern.flags)
        assert _consumes_newline(parsed, bool(det.pattern.flags & re.DOTALL)) == det.multiline, det.pattern.pattern
    assert _consumes_newline(_parser.parse(r"a\Db")) and not _consumes_newline(_parser.parse(r"a[^\n]b(?=\s)"))
    assert _consumes_newline(_parser.parse(r"(?s:.)")) and not _consumes_newline(_parser.parse(r"."))


def test_paragraph_scan_finds_exactly_what_the_whole_text_scan_finds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Planted values (and the same cut or grown by a character) in paragraphs of filler, with line
    breaks and blank lines at random places, some inside a value or between a keyword and its value
    (found by the multiline detectors across paragraphs): the paragraph scan, memoized paragraphs
    included, finds exactly the whole-text findings."""
    monkeypatch.setattr(redact, "CHUNKED_MIN_CHARS", 0)
    rng = random.Random(8)
    values = [*PLANTED, "password =\n\n hunter2x!", "Bearer\n\nabcdefghijklmnopqrstuvwxyz012345", "ssn\n\n123-45-6789",
              "sk-ant-api03-abcdefghijklmnopqrstuvwxyz", "mail a.b@example.com", "AKIAIOSFODNN7EXAMPLE",
              "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n\nOgIB\n-----END RSA PRIVATE KEY-----", "call me at\n\n0412 345 678"]
    filler = ["The catalogue notes follow.", "Current time: 2026-10-29T13:39:23Z", "", "- item 12, price 4.50",
              "Reply in one short paragraph.", "Call the desk, tell the hotel.", "Café: passé (non-ASCII)",
              "api access, auth and secret words"]
    redactor = redact.CachedRedactor()
    crossing = 0
    for _ in range(3_000):
        parts = [rng.choice(filler) for _ in range(rng.randint(1, 6))]
        value = rng.choice(values)
        if rng.random() < 0.3:
            i = rng.randrange(len(value) + 1)
            value = value[:i] + rng.choice(["\n", "\n\n", "", "x", " "]) + value[i + 1:]
        parts.insert(rng.randrange(len(parts) + 1), value)
        text = "".join(p + rng.choice(["\n\n", "\n", " ", "\n\n\n"]) for p in parts)
        expected = redact.find_sensitive(text)
        assert redactor.findings(text) == expected, text
        crossing += any("\n\n" in f.value or "\n\n" in text[max(0, f.start - 12):f.start] for f in expected)
    assert crossing > 50  # findings next to or across a paragraph break occurred
    assert len(redactor._paragraphs) < 3_000  # paragraphs were memoized and reused


def test_long_texts_are_scanned_by_paragraph_and_short_ones_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    redactor = redact.CachedRedactor()
    short = "a\n\nb " * 10
    assert redactor.findings(short) == [] and not redactor._paragraphs
    long = ("notes " * 400 + "\n\n") * 2 + "mail a.b@example.com"
    assert len(long) >= redact.CHUNKED_MIN_CHARS
    assert [f.value for f in redactor.findings(long)] == ["a.b@example.com"]
    assert len(redactor._paragraphs) == 2  # the repeated paragraph once, the last one
