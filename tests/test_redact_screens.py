"""The redaction screens (`Detector.screen`, `may_hold_sensitive`): one vectorized regex pass over a
batch of texts decides which texts the detectors scan at all. A screen that misses a text its
detector finds something in would leak that value into the fine-tuning data, so each screen is
checked as a necessary condition, in both engines (polars' Rust `regex`, which runs it, and
Python's `re`), on every detector's shapes: planted values, the same cut or grown by one
character, changed in case, with the longest gaps their keyword patterns allow (just inside) and
one character longer (just outside), and with line breaks and Python-only whitespace (`\\x1c`)
where `\\s` is allowed. The batch redaction then finds exactly what `find_sensitive` finds."""

from __future__ import annotations

import random
import re
from collections import Counter

import polars as pl
import pytest

from pipeline.dataset import redact

A20 = "Ab3dE5gH7jK9mN1pQ3sT"  # 20 token characters
B40 = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
# At least one value per detector, in DETECTORS order; keyword values at their longest gaps.
VALUES = [
    "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAK\n-----END RSA PRIVATE KEY-----", "-----BEGIN PRIVATE KEY-----",
    f"sk-ant-api03-{A20}xyz", f"sk-ant-admin01-{A20}", f"sk-proj-{A20}", f"sk-{A20}",
    "AKIAIOSFODNN7EXAMPLE", "ASIAY34FZKBOKMUTVV7A",
    f"aws_secret_access_key = {B40}", f"AWS {'x' * 30}secret{' ' * 25}:= \"{B40}\"", f"aws sk\n\n=\n{B40}",
    f"AKIAIOSFODNN7EXAMPLE and {'y ' * 40}{B40}",
    f"key {B40}.",
    "ghp_" + "a1B2" * 9, "github_pat_" + "a1_B2" * 5 + "xy",
    f"glpat-{A20}", "AIza" + "Sy" + A20 + "0123456789abc", f"ya29.{A20}", f"GOCSPX-{A20}", "xoxb-1234567890-abc",
    "xapp-1-A1B2-123-abc1", "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXX",
    "sk_live_" + "a1B2" * 4, "rk_test_" + "a1B2" * 5, "hf_" + "a1B2c" * 6, "npm_" + "a1B2" * 9,
    "eyJhbGciOiJI.eyJzdWIiOiIx.abcdefgh",
    f"Authorization: Bearer {A20}", f"BEARER\x1c{A20}==", f"bearer\n\n\t{A20}",
    "postgres://user:s3cretpw@db.internal:5432/x", "https://admin:hunter2x@example.com",
    "password = hunter2x!", "secret_key: s3cr3t-value", "API-KEY\x1f=abc123def", "client_secret=>'xyz12345'",
    "Private_Token:\n\n'tok3n-value'", "passphrase \"correct-horse!\"", "AUTH-TOKEN=abc.def1",
    "a.b@example.com", "first.last+tag@mail.example.co.uk",
    "4111 1111 1111 1111", "4111-1111-1111-1111", "5500000000000004",
    "123-45-6789",
    "ssn 123 45 6789", "SSN: 123456789", "social security number" + "-" * 20 + "123456789",
    "Social Security No." + "\n" * 20 + "123 45 6789",
    "AB 12 34 56 C", "AB123456C",
    "+44 20 7946 0958", "+1 (415) 555-2671",
    "(415) 555-2671", "415-555-2671", "415.555.2671",
    "phone: 0412 345 678", "Telephone" + ":" * 15 + "(0412) 345 678", "call me at" + "\n" * 15 + "(04) 345 678",
    "WhatsApp +44 7911 123456", "fax 02 9999 1234",
    "192.168.1.20", "host 8.8.8.8 up",
    "fe80::1ff:fe23:4567:890a", "2001:db8::8a2e:370:7334",
    "2001:db8:85a3:0:0:8a2e:370:7334",
]
# One character past what each keyword pattern allows: nothing to find, whatever the screen says.
BEYOND = ["social security number" + "-" * 21 + "123456789", "call me at" + "\n" * 16 + "(04) 345 678",
          "Telephone" + ":" * 16 + "(0412) 345 678", f"AWS {'x' * 31}secret = {B40}"]


def _variants(rng: random.Random) -> list[str]:
    filler = ["", " ", "x", "\n", "\n\n", "ok ", "call", "tel", "api ", "(", ":", "-", "1", "@", "é "]
    texts = [*VALUES, *BEYOND]
    for value in VALUES:
        for i in range(len(value) + 1):
            texts.append(value[:i] + value[i + 1:])  # one character shorter
            texts.append(value[:i] + rng.choice("0123456789-. :+()/ABCabc_@=\n\x1c") + value[i:])  # one longer
        texts += [value.upper(), value.lower(), value.title(), value.replace(" ", "\n")]
        texts += [rng.choice(filler) + value + rng.choice(filler) for _ in range(20)]
    return texts


TEXTS = _variants(random.Random(4))


def test_every_detector_has_a_screen() -> None:
    """A detector without one makes every text scanned again (correct, but the speed is gone)."""
    assert all(d.screen for d in redact.DETECTORS)
    assert redact._LINE_SCREEN and redact._MULTILINE_SCREEN
    assert redact.screen_pattern([(0, redact.Detector("X", "pii", re.compile("x")))]) is None


@pytest.mark.parametrize("index", range(len(redact.DETECTORS)),
                         ids=[f"{i}:{d.kind}" for i, d in enumerate(redact.DETECTORS)])
def test_screen_matches_every_text_its_detector_finds_something_in(index: int) -> None:
    det = redact.DETECTORS[index]
    assert det.screen is not None
    python = re.compile(det.screen)
    found = [t for t in TEXTS if t.isascii() and redact.find_sensitive(t, (det,))]
    assert found, "the detector found nothing: the check would be vacuous"
    rust = pl.Series(found, dtype=pl.String).str.contains(det.screen).to_list()
    missed = [t for t, hit in zip(found, rust, strict=True) if not hit or not python.search(t)]
    assert not missed


def test_batch_redaction_finds_exactly_what_the_whole_text_scan_finds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short texts, long texts cut into paragraphs (the threshold lowered so every text with a blank
    line is one), non-ASCII texts and repeats, as one batch and one by one."""
    for min_chars in (redact.CHUNKED_MIN_CHARS, 0):
        monkeypatch.setattr(redact, "CHUNKED_MIN_CHARS", min_chars)
        texts = [*TEXTS, *TEXTS[:50], "café +44 20 7946 0958", "lone \ud800 a.b@example.com"]
        expected = [redact.find_sensitive(t) for t in texts]
        assert redact.CachedRedactor().findings_all(texts) == expected
        assert sum(map(bool, expected)) > len(VALUES)
        one = redact.CachedRedactor()
        assert [one.findings(t) for t in texts[:300]] == expected[:300]


def test_redact_all_matches_redact_per_text() -> None:
    texts = [*TEXTS[:400], None, "", *TEXTS[:20]]
    batch = redact.CachedRedactor(max_entries=50)  # emptied mid-batch: entries read before are kept
    results = batch.redact_all(texts)
    for text, (redacted, kinds) in zip(texts, results, strict=True):
        counts: Counter[str] = Counter()
        assert redacted == redact.redact(text, counts), text
        assert dict(kinds) == counts
    assert len(batch._cache) <= 50


def test_screened_texts_are_not_scanned(monkeypatch: pytest.MonkeyPatch) -> None:
    """The screen's whole point: a batch of clean texts costs no per-text scan; a text with a value
    (or not ASCII, which the screens do not read) is scanned."""
    scanned: list[str] = []
    real = redact._scan

    def counted(text: str, detectors: object) -> list:
        scanned.append(text)
        return real(text, detectors)  # type: ignore[arg-type]

    monkeypatch.setattr(redact, "_scan", counted)
    clean = ["Reply in one short paragraph.", "12 rooms in the hotel. Tell the desk by 9.", "api access and auth docs"]
    assert redact.CachedRedactor().findings_all(clean) == [[], [], []] and scanned == []
    redactor = redact.CachedRedactor()
    out = redactor.findings_all([*clean, "mail a.b@example.com", "café au lait"])
    assert [f.value for f in out[3]] == ["a.b@example.com"] and out[4] == []
    assert scanned == ["mail a.b@example.com", "café au lait"]
    scanned.clear()
    long = ("notes on the hotel " * 120 + "\n\n") * 2 + "mail a.b@example.com"
    assert [f.value for f in redactor.findings(long)] == ["a.b@example.com"]
    assert scanned == ["mail a.b@example.com"]  # the clean paragraph and the whole text's keyword scan skipped


def test_may_hold_sensitive_reads_only_ascii_texts() -> None:
    texts = ["plain words", "a.b@example.com", "plain café", "lone \ud800 surrogate", "", "phone: 0412 345 678"]
    assert redact.may_hold_sensitive(texts, *redact._ALL_SCREENS) == [False, True, True, True, False, True]
    assert redact.may_hold_sensitive(texts, redact._LINE_SCREEN)[-1] is False  # the phone keyword screen is multiline
    assert redact.may_hold_sensitive(texts, redact._MULTILINE_SCREEN)[1] is False  # the e-mail screen is not
    assert redact.may_hold_sensitive(texts, redact._LINE_SCREEN, None) == [True] * 6
    assert redact.may_hold_sensitive([], *redact._ALL_SCREENS) == []
    # `\s` in Python's `re` matches \x1c-\x1f, Rust's does not: the screens spell the class out.
    assert all(bool(re.fullmatch(redact._ASCII_SPACE, chr(c))) == bool(re.fullmatch(r"\s", chr(c))) for c in range(128))


def test_keyword_gaps_at_their_edges() -> None:
    """The screens' gap bounds are the patterns' own: the longest gap is found, one more is not."""
    assert [f.value for f in redact.find_sensitive(VALUES[VALUES.index("social security number" + "-" * 20
                                                                         + "123456789")])] == ["123456789"]
    assert [f.kind for f in redact.find_sensitive("call me at" + "\n" * 15 + "(04) 345 678")] == ["PHONE"]
    assert [f.kind for f in redact.find_sensitive("Telephone" + ":" * 15 + "(0412) 345 678")] == ["PHONE"]
    assert [redact.find_sensitive(t) for t in BEYOND[:3]] == [[], [], []]


def test_pii_filter_scans_a_shared_text_once_and_drops_exactly_the_conversations_with_findings(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`--pii drop`: every request resends the system prompt (and its history); the filter's
    redactor scans each distinct text once, and only texts a screen cannot rule out."""
    from pipeline.dataset import filters
    from pipeline.dataset.examples import Message

    scanned: list[str] = []
    real = redact.find_sensitive

    def counted(text: str | None, *rest: object) -> list[redact.Finding]:
        scanned.append(text or "")
        return real(text, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(redact, "find_sensitive", counted)
    system = "Desk phone: ext 12. Answer briefly."  # the phone screen passes; the pattern finds nothing
    cands = [filters.Candidate(row={"request_id": f"r{i}", "system_text": system}, label={}, tools=None,
                               task_type="chat",
                               messages=[Message("user", f"question {i}" + (" mail a.b@example.com" if i % 7 == 0 else "")),
                                         Message("assistant", "ok", [{"name": "f", "arguments": None}])])
             for i in range(50)]
    ctx = filters.FilterContext(max_example_tokens=100, supports_tools=True, pii_drop=True, refusal_prefix_chars=200)
    assert [c.request_id for c in cands if filters.pii(c, ctx)] == [f"r{i}" for i in range(0, 50, 7)]
    assert ctx.details["r7"] == "EMAIL" and "r1" not in ctx.details
    assert scanned.count(system) == 1 and len(scanned) == 1 + 8  # the prompt once, the 8 e-mails; nothing else
    keep = filters.FilterContext(max_example_tokens=100, supports_tools=True, pii_drop=False, refusal_prefix_chars=200)
    assert not any(filters.pii(c, keep) for c in cands)
