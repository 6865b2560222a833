"""Every validator of the secret/PII detectors pinned from both sides (pipeline/dataset/redact.py):
Luhn by one digit, card lengths 12/13 and 19/20, issuer prefixes, the SSA's never-issued SSN ranges
and their neighbours, phone digit counts 7/8 and 15/16, addresses that identify nobody, placeholder
values after `password=`, and the detectors test_dataset_redact.py does not plant."""

from __future__ import annotations

from collections import Counter

import pytest

from pipeline.dataset.redact import CachedRedactor, find_sensitive, redact


def luhn_complete(body: str) -> str:
    """`body` + the check digit that makes it Luhn-valid (worked independently of the module)."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:  # these positions are doubled once the check digit is appended
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return body + str((10 - total % 10) % 10)


def kinds(text: str) -> list[tuple[str, str]]:
    return [(f.kind, f.value) for f in find_sensitive(text)]


def in_text(value: str) -> str:
    return f"the number is {value} as written."


@pytest.mark.parametrize("length", range(11, 22))
def test_card_length_13_to_19(length: int) -> None:
    number = luhn_complete("4" + "0123456789" * 2)[: length - 1]
    number = luhn_complete(number)
    found = kinds(in_text(number))
    assert (found == [("CREDIT_CARD", number)]) is (13 <= length <= 19), found


def test_luhn_by_one_digit() -> None:
    good = luhn_complete("453201511283036")
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    assert kinds(in_text(good)) == [("CREDIT_CARD", good)]
    assert kinds(in_text(bad)) == []
    # every doubled position matters: a valid number with two digits swapped fails
    swapped = good[0] + good[2] + good[1] + good[3:]
    assert kinds(in_text(swapped)) == []


@pytest.mark.parametrize(("prefix", "card"), [
    ("4", True), ("51", True), ("55", True), ("56", True), ("22", True), ("27", True), ("34", True), ("37", True),
    ("6011", True), ("65", True), ("644", True), ("35", True), ("62", True),
    ("1", False), ("9", False), ("7", False), ("80", False), ("28", False), ("600", False),
])
def test_issuer_prefixes(prefix: str, card: bool) -> None:
    number = luhn_complete(prefix + "7" * (15 - len(prefix)))
    assert bool(kinds(in_text(number))) is card


def test_one_repeated_digit_is_not_a_card() -> None:
    same = "4" * 17  # Luhn-valid and a Visa prefix, but one digit repeated: a placeholder, not a card
    assert kinds(in_text(same)) == []
    assert kinds(in_text(luhn_complete("4" * 15 + "2"))) == [("CREDIT_CARD", luhn_complete("4" * 15 + "2"))]


@pytest.mark.parametrize(("value", "ssn"), [
    ("000-12-3456", False), ("001-12-3456", True), ("665-12-3456", True), ("666-12-3456", False),
    ("667-12-3456", True), ("899-12-3456", True), ("900-12-3456", False), ("123-00-4567", False),
    ("123-01-4567", True), ("123-45-0000", False), ("123-45-0001", True),
])
def test_ssn_never_issued_ranges_and_neighbours(value: str, ssn: bool) -> None:
    assert kinds(f"ssn field {value}") == ([("SSN", value)] if ssn else [])


@pytest.mark.parametrize(("value", "phone"), [
    ("+1 234 567", False),  # 7 digits
    ("+1 234 5678", True),  # 8
    ("+123 4567 8901 2345", True),  # 15
    ("+123 4567 8901 23456", False),  # 16
    ("+1 111 1111", False),  # one distinct digit
    ("+1 212 1212", False),  # two distinct digits
    ("+1 212 1213", True),  # three
])
def test_international_phone_digit_counts(value: str, phone: bool) -> None:
    assert kinds(f"reach me on {value} today") == ([("PHONE", value)] if phone else [])


@pytest.mark.parametrize(("value", "ip"), [
    ("127.0.0.1", False), ("0.0.0.0", False), ("255.255.255.0", False), ("254.1.2.3", True),
    ("256.1.2.3", False), ("1.2.3.4", True), ("128.0.0.1", True),
    ("::1", False), ("fe80::1:2", True), ("a::b", False), ("2001:db8::8a2e:370:7334", True),
])
def test_ip_addresses_that_identify_somebody(value: str, ip: bool) -> None:
    assert kinds(f"host {value} answered") == ([("IP_ADDRESS", value)] if ip else [])


@pytest.mark.parametrize(("value", "nino"), [("AB 12 34 56 C", True), ("BG 12 34 56 C", False),
                                             ("GB123456A", False), ("ZZ123456A", False), ("TN123456A", False),
                                             ("CE123456D", True)])
def test_uk_nino_excluded_prefixes(value: str, nino: bool) -> None:
    assert kinds(f"my NI number {value} ok") == ([("UK_NINO", value)] if nino else [])


@pytest.mark.parametrize(("value", "secret"), [
    ("hunter2!x", True), ("S3cretValue", True), ("abcdefgh", False), ("12345678", False),
    ("your_password_here", False), ("${DB_PASSWORD}", False), ("<password>", False), ("changeme", False),
    ("changeme1", True), ("xxx123456", False), ("redacted123", False), ("null", False),
])
def test_assigned_secret_values(value: str, secret: bool) -> None:
    assert kinds(f"password={value} in the config") == ([("SECRET", value)] if secret else [])


@pytest.mark.parametrize(("value", "secret"), [
    ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", True),
    ("wjalrxutnfemi/k7mdeng/bpxrficyexamplekey", False),  # no upper case
    ("WJALRXUTNFEMI/K7MDENG/BPXRFICYEXAMPLEKEY", False),  # no lower case
    ("wJalrXUtnFEMI/KzMDENG/bPxRfiCYEXAMPLEKEY", False),  # no digit
])
def test_forty_char_aws_secret_needs_mixed_case_and_digits(value: str, secret: bool) -> None:
    assert kinds(f"value {value} here") == ([("AWS_SECRET_KEY", value)] if secret else [])


OTHER_DETECTORS = [
    ("GITLAB_TOKEN", "glpat-" + "aB3dE5gH7jK9mN1pQ3sT"),
    ("GOOGLE_OAUTH_TOKEN", "ya29." + "a0AfH6SMB" + "x" * 20),
    ("GOOGLE_OAUTH_TOKEN", "GOCSPX-" + "AbCdEfGhIjKlMnOpQrStUv"),
    ("SLACK_TOKEN", "xapp-1-A0123ABCD-1234567890123-abcdef0123456789"),
    ("SLACK_WEBHOOK", "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"),
    ("STRIPE_KEY", "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"),
    ("STRIPE_KEY", "rk_test_" + "4eC39HqLyjWDarjtT1zdp7dc"),
    ("HUGGINGFACE_TOKEN", "hf_" + "aBcDeFgHiJkLmNoPqRsTuVwXyZ012345"),
    ("NPM_TOKEN", "npm_" + "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"),
    ("ANTHROPIC_KEY", "sk-ant-admin01-" + "Ab3dE5gH7jK9mN1pQ3sT5vX7"),
    ("OPENAI_KEY", "sk-svcacct-" + "Ab3dE5gH7jK9mN1pQ3sT5vX7"),
]


@pytest.mark.parametrize(("kind", "value"), OTHER_DETECTORS, ids=[k for k, _ in OTHER_DETECTORS])
def test_other_detectors_typed_and_bounded(kind: str, value: str) -> None:
    assert kinds(f"use {value} now") == [(kind, value)]
    if kind != "SLACK_WEBHOOK":  # a URL has no token boundary to check
        # glued to a preceding token character, it is part of a longer word: not this detector's match
        assert (kind, value) not in kinds(f"use x{value} now")


@pytest.mark.parametrize(("text", "kind", "value"), [
    ("Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123", "SECRET", "abcdefghijklmnopqrstuvwxyz0123"),
    ("postgres://app:s3cr3t-pw@db.internal:5432/x", "SECRET", "s3cr3t-pw"),
    ("my social security number is 123 45 6789.", "SSN", "123 45 6789"),
    ("ssn: 123456789", "SSN", "123456789"),
    ("call me at (415) 555-0134 please", "PHONE", "(415) 555-0134"),
    ("tel 020 7946 0018", "PHONE", "020 7946 0018"),
    ("aws_secret_access_key = wjalrxutnfemi/k7mdeng/bpxrficyexamplekey", "AWS_SECRET_KEY",
     "wjalrxutnfemi/k7mdeng/bpxrficyexamplekey"),
])
def test_keyword_anchored_detectors_redact_only_the_value(text: str, kind: str, value: str) -> None:
    assert kinds(text) == [(kind, value)]
    assert redact(text) == text.replace(value, f"[REDACTED_{kind}]")


def test_bearer_needs_20_characters() -> None:
    assert kinds("Bearer " + "a" * 19) == []
    assert kinds("Bearer " + "a" * 20) == [("SECRET", "a" * 20)]


def test_overlapping_findings_keep_the_earliest_and_most_specific() -> None:
    text = "key sk-ant-api03-" + "A1b2" * 6 + " and mail a@b.co"
    assert [k for k, _ in kinds(text)] == ["ANTHROPIC_KEY", "EMAIL"]
    counts: Counter[str] = Counter()
    assert redact(text, counts) == "key [REDACTED_ANTHROPIC_KEY] and mail [REDACTED_EMAIL]"
    assert counts == {"ANTHROPIC_KEY": 1, "EMAIL": 1}


def test_cached_redactor_counts_every_use_and_stays_bounded() -> None:
    cache = CachedRedactor(max_entries=2)
    counts: Counter[str] = Counter()
    text = "mail a.b@example.com"
    assert cache.redact(text, counts) == cache.redact(text, counts) == "mail [REDACTED_EMAIL]"
    assert counts == {"EMAIL": 2}
    assert cache.redact("plain words", counts) == "plain words" and counts == {"EMAIL": 2}
    assert cache.redact("", counts) == "" and cache.redact(None, counts) is None
    cache.redact("third text", counts)
    assert len(cache._cache) <= 2
    chars = CachedRedactor(max_chars=10)
    chars.redact("mail a.b@example.com", counts)
    chars.redact("mail c.d@example.com", counts)
    assert len(chars._cache) == 1  # the first redacted copy filled the character budget


@pytest.mark.parametrize("value", ["NK123456A", "KN123456A", "NT123456A"])
def test_more_excluded_nino_prefixes(value: str) -> None:
    assert kinds(f"my NI number {value} ok") == []


@pytest.mark.parametrize("value", ["0:0:0:0:0:0:0:1", "0:0:0:0:0:0:0:0"])
def test_full_form_ipv6_loopback_and_unspecified_are_not_addresses(value: str) -> None:
    assert kinds(f"host {value} answered") == []
    assert kinds("host 2001:db8:0:0:0:0:0:1 answered") == [("IP_ADDRESS", "2001:db8:0:0:0:0:0:1")]


def test_symbol_without_digit_is_a_credential() -> None:
    assert kinds("password=correct-horse! in the config") == [("SECRET", "correct-horse!")]


def test_findings_at_the_start_and_their_families() -> None:
    found = find_sensitive("a.b@example.com wrote sk-proj-" + "Ab3dE5gH7jK9mN1pQ3sT5vX7")
    assert [(f.kind, f.family, f.start) for f in found] == [("EMAIL", "pii", 0), ("OPENAI_KEY", "secret", 22)]
    # one token character before the key at offset 1: part of a longer word, not a key
    assert kinds("xsk-proj-" + "Ab3dE5gH7jK9mN1pQ3sT5vX7") == []


def test_a_rejected_match_does_not_stop_the_detector() -> None:
    key = "sk-proj-" + "Ab3dE5gH7jK9mN1pQ3sT5vX7"
    assert kinds(f"x{key} then {key}") == [("OPENAI_KEY", key)]  # boundary rejected, then found
    good = luhn_complete("453201511283036")
    assert kinds(f"4111 1111 1111 1112 then {good}") == [("CREDIT_CARD", good)]  # checksum rejected first


def test_counts_add_up_per_kind() -> None:
    counts: Counter[str] = Counter()
    redact("a.b@example.com and c.d@example.com", counts)
    assert counts == {"EMAIL": 2}


def test_cached_redactor_memoizes_by_content(monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.dataset.redact as module

    calls: list[str] = []
    real = module.find_sensitive
    monkeypatch.setattr(module, "find_sensitive", lambda text, *rest: calls.append(text) or real(text, *rest))
    cache = CachedRedactor()
    counts: Counter[str] = Counter()
    for _ in range(3):
        assert cache.redact("mail a.b@example.com", counts) == "mail [REDACTED_EMAIL]"
    assert calls == ["mail a.b@example.com"] and counts == {"EMAIL": 3}
    assert cache.redact("lone surrogate \ud800 here", counts) == "lone surrogate \ud800 here"


def test_cached_redactor_character_budget_boundary() -> None:
    """The cache is emptied once the redacted copies it holds reach max_chars; texts without findings
    are held by hash alone and cost no characters."""
    redacted = "mail [REDACTED_EMAIL]"  # 21 characters
    below = CachedRedactor(max_chars=len(redacted) + 1)
    counts: Counter[str] = Counter()
    below.redact("plain words only", counts)
    below.redact("mail a.b@example.com", counts)
    below.redact("more plain words", counts)
    assert len(below._cache) == 3  # 21 < 22: nothing emptied
    at = CachedRedactor(max_chars=len(redacted))
    at.redact("mail a.b@example.com", counts)
    at.redact("more plain words", counts)
    assert len(at._cache) == 1  # 21 >= 21: emptied before the second entry
    twice = CachedRedactor(max_chars=2 * len(redacted))
    twice.redact("mail a.b@example.com", counts)
    twice.redact("mail c.d@example.com", counts)
    twice.redact("more plain words", counts)
    assert len(twice._cache) == 1  # 21 + 21 = 42 >= 42: the copies add up
