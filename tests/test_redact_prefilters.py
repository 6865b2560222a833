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
    """A detector pattern that counts its scans: a prefilter's whole point is the scan it skips."""

    def __init__(self, pattern: str) -> None:
        self.compiled = re.compile(pattern)
        self.scans = 0

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        self.scans += 1
        return self.compiled.finditer(text)


def scans(text: str, **prefilter: object) -> tuple[int, list[str]]:
    """(scans, values found) of a digits detector with the given prefilter, on `text`."""
    pattern = CountingPattern(r"\d+")
    det = redact.Detector("DIGITS", "pii", pattern, **prefilter)  # type: ignore[arg-type]
    values = [f.value for f in redact.find_sensitive(text, (det,))]
    return pattern.scans, values


def test_each_prefilter_skips_the_scan_exactly_when_its_condition_fails() -> None:
    assert scans("a 12", gate="@") == (0, []) and scans("a@ 12", gate="@") == (1, ["12"])
    assert scans("ring 12", gate=("call", "tel")) == (0, [])
    assert scans("Call 12", gate=("call", "tel")) == (1, ["12"])
    assert scans("TEL 12", gate=("call", "tel")) == (1, ["12"])  # the second keyword, any case
    assert scans("a 12", min_digits=3) == (0, []) and scans("a 123", min_digits=3) == (1, ["123"])
    assert scans("a 12 3", min_digits=3) == (1, ["12", "3"])  # digits counted over the whole text
    assert scans("é 12", min_digits=3) == (1, ["12"])  # not ASCII: never skipped by the count
    assert scans("a 12", needs=lambda t: "#" in t) == (0, []) and scans("#12", needs=lambda t: "#" in t) == (1, ["12"])
    assert scans("a 12") == (1, ["12"])  # no prefilter: always scanned


def test_prefilters_of_several_detectors_share_one_text() -> None:
    """The lower-cased text and the digit count are computed once and reused by later detectors."""
    first, second = CountingPattern(r"\d+"), CountingPattern(r"[a-z]+")
    dets = (redact.Detector("D", "pii", first, gate=("x",), min_digits=2),  # type: ignore[arg-type]
            redact.Detector("W", "pii", second, gate=("y",), min_digits=3))  # type: ignore[arg-type]
    assert [f.value for f in redact.find_sensitive("X 12 y", dets)] == ["12"]  # 2 digits: W is skipped
    assert (first.scans, second.scans) == (1, 0)
    assert [f.value for f in redact.find_sensitive("X 123 y", dets)] == ["123", "y"]
    assert (first.scans, second.scans) == (2, 1)
