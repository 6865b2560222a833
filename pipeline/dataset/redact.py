"""Secrets and PII: detection and typed redaction (`[REDACTED_EMAIL]`, `[REDACTED_OPENAI_KEY]`, …).

Why a regex set of our own rather than a detector library: we checked the candidates that load
offline. `detect-secrets` (Yelp, 1.5) scans source files line by line and covers secrets only. Run
with its default plugins over the sample logs' planted values it found 83 of 137 (no cards,
phones, SSNs or IPs), and over 5.2 MB of the sample's text with nothing planted it reported 788k
"high entropy strings" (ordinary words) in 221 s; this module finds all 137 with zero findings on
that text in under 2 s. Presidio covers PII, but its analyzer needs a spaCy model at load time (a
download) and its pattern recognizers are the same kind of regexes as below, without the
provider-key set. So the detectors here are anchored on each provider's documented token prefix
and length (the shapes gitleaks and detect-secrets use), and PII numbers are checked, not just
matched: cards by the Luhn checksum and issuer prefix, SSNs by the SSA's never-issued ranges, IPs
by `ipaddress`. tests/test_dataset_sample.py measures precision and recall on the generator's
planted secrets and Luhn-invalid decoys.

A detector that matches a span another (earlier-starting or higher-priority) detector already
claimed is skipped, so nested shapes (an `sk-ant-…` key is also an `sk-…` string) get one label.

The dataset redacts a bucket's texts as one batch (`CachedRedactor.redact_all`): the new ones are
screened first in polars, one vectorized pass per screen set (`Detector.screen`, a necessary
condition per detector, tests/test_redact_screens.py), and only the few a detector could match
are scanned here.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import polars as pl
import xxhash

from pipeline.tokens import SPLIT_MIN_CHARS, long_text_paragraphs

PLACEHOLDER = "[REDACTED_{kind}]"
_PLACEHOLDER_RE = re.compile(r"\[REDACTED_[A-Z_]+\]")


@dataclass(frozen=True)
class Detector:
    """One kind of sensitive value; `group` selects the part of the match that is redacted."""

    kind: str  # placeholder suffix and counter key, e.g. "EMAIL"
    family: str  # "secret" | "pii"
    pattern: re.Pattern[str]
    group: int = 0
    validate: Callable[[str], bool] | None = None
    not_after: frozenset[str] = frozenset()  # characters that may not precede the value (a token boundary)
    # A substring the text must contain; or a tuple of the lower-case keywords every match starts with
    # (case aside), the pattern then tried only where one starts (`_scan`).
    gate: str | tuple[str, ...] | None = None
    # Cheaper necessary conditions, checked before the scan (they never change what is found):
    min_digits: int = 0  # every match holds at least this many digits (checked on ASCII text)
    needs: Callable[[str], bool] | None = None  # False: the pattern cannot match this text
    # The pattern can match a line break (`\s`, `\D`, `[\s\S]`): scanned over the whole text. The
    # others match within a line, so a text is scanned paragraph by paragraph (`CachedRedactor`).
    multiline: bool = False
    # A pattern every ASCII text the detector finds something in matches, in the syntax Python's `re`
    # and Rust's `regex` (polars) read alike: `CachedRedactor` screens a batch of texts with all
    # detectors' screens in one vectorized pass and scans only those that match. None: always scanned.
    screen: str | None = None


@dataclass(frozen=True)
class Finding:
    kind: str
    family: str
    start: int
    end: int
    value: str


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# Issuer prefixes (IIN ranges) of the card networks; a Luhn-valid number outside them is far more
# likely an id or a counter than a card.
_CARD_IIN = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[47]|3[0689]|6(?:011|5|4[4-9]|22)|35|62|50|5[6-8]|6[37])")


def _card_ok(value: str) -> bool:
    digits = re.sub(r"[ -]", "", value)
    if not 13 <= len(digits) <= 19 or len(set(digits)) < 2:
        return False
    return bool(_CARD_IIN.match(digits)) and _luhn_ok(digits)


def _ipv4_ok(value: str) -> bool:
    try:
        ip = ipaddress.IPv4Address(value)
    except ValueError:
        return False
    # Loopback, unspecified, broadcast and netmask-looking values identify nobody.
    return not (ip.is_loopback or ip.is_unspecified or value.startswith("255.") or value == "0.0.0.0")


def _ipv6_ok(value: str) -> bool:
    groups = [g for g in value.split(":") if g]
    if len(groups) < 3 or value.count(":") < 2:
        return False  # "a::b", "12:30:45"-like strings are too short to be addresses in prose
    try:
        ip = ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return not (ip.is_loopback or ip.is_unspecified)


def _ssn_ok(value: str) -> bool:
    # Never issued by the SSA: area 000, 666 or 900-999, group 00, serial 0000.
    area, group, serial = value.split("-")
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _nino_ok(value: str) -> bool:
    return value[:2].upper() not in ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ")


def _phone_ok(value: str) -> bool:
    digits = re.sub(r"\D", "", value)
    return 8 <= len(digits) <= 15 and len(set(digits)) > 2


_PLACEHOLDER_VALUE = re.compile(
    r"^(?:\[REDACTED|<|\$|\{|%|os\.|process\.env|env\.|getenv|your|my_?|xxx|\*{3}|\.{3}|none$|null$|true$|false$|"
    r"undefined$|changeme$|example|placeholder|redacted|secret$|password$|token$)",
    re.IGNORECASE,
)


def _assigned_secret_ok(value: str) -> bool:
    """A value assigned to `password=`/`api_key:`… that looks like a credential, not a placeholder."""
    if _PLACEHOLDER_VALUE.match(value):
        return False
    has_digit = any(c.isdigit() for c in value)
    has_alpha = any(c.isalpha() for c in value)
    has_symbol = any(not c.isalnum() for c in value)
    return has_alpha and (has_digit or has_symbol)


def _high_entropy_40_ok(value: str) -> bool:
    # AWS secret access keys: 40 base64 chars, mixed case with digits (hex hashes are lower case).
    return (
        any(c.isupper() for c in value)
        and any(c.islower() for c in value)
        and any(c.isdigit() for c in value)
    )


def _d(kind: str, family: str, pattern: str, group: int = 0, validate: Callable[[str], bool] | None = None, *,
       not_after: str = "", gate: str | tuple[str, ...] | None = None, min_digits: int = 0,
       needs: Callable[[str], bool] | None = None, multiline: bool = False, screen: str | None = None) -> Detector:
    return Detector(kind, family, re.compile(pattern), group, validate, frozenset(not_after), gate, min_digits, needs,
                    multiline, screen)


def _searches(pattern: str) -> Callable[[str], bool]:
    """A necessary condition as a pattern that starts with a literal, which the engine finds by a
    fast scan (the detector's own pattern is tried at every offset)."""
    compiled = re.compile(pattern)
    return lambda text: compiled.search(text) is not None


_B64_CLASS = bytes(1 if chr(b) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+" else 0
                   for b in range(256))


def _b64_run(length: int) -> Callable[[str], bool]:
    """Whether the text holds `length` consecutive characters of [A-Za-z0-9/+]: one byte translation
    and a substring search (UTF-8 bytes of other characters are all >= 0x80, never in the class)."""
    run = b"\x01" * length

    def holds(text: str) -> bool:
        return run in text.encode("utf-8", "surrogatepass").translate(_B64_CLASS)

    return holds


_ASCII_DIGITS = b"0123456789"


def _ascii_digit_count(text: str) -> int:
    """Digits in `text`, or a count no detector exceeds when the text is not ASCII (`\\d` also
    matches other scripts' digits, which this does not count). One byte-deleting pass (4x faster
    than counting each digit)."""
    if not text.isascii():
        return 1 << 30
    raw = text.encode("ascii")
    return len(raw) - len(raw.translate(None, _ASCII_DIGITS))


# Patterns start with their literal prefix or first character class, never with a lookbehind: the
# regex engine then skips ahead to candidate positions instead of trying every offset (a leading
# lookbehind made the scan ~20x slower). The left boundary is checked in code (`not_after`), and
# detectors whose shape needs a rare character or keyword are skipped when the text lacks it (`gate`).
# A keyword detector's pattern starts with its keyword, each keyword's first letter as a class
# (`[Pp](?i:hone)`): a leading `(?i:...)` group makes `re` try every offset.
_TOKEN = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+="
_E = r"(?![A-Za-z0-9_\-])"  # token end
_ASCII_SPACE = r"[\t-\r\x1c-\x20]"  # what `\s` matches in ASCII text (screens: Rust's `\s` omits \x1c-\x1f)
_SECRET_WORDS = ("pass", "pwd", "private", "client_secret", "secret", "api", "access", "auth")
_PHONE_WORDS = ("phone", "tel", "mobile", "cell", "call", "fax", "whatsapp")

# Order is priority when two detectors match at the same offset: specific shapes first.
DETECTORS: tuple[Detector, ...] = (
    _d("PRIVATE_KEY", "secret",
       r"-----BEGIN[A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]{0,12000}?-----END[A-Z0-9 ]{0,30}PRIVATE KEY"
       r"(?: BLOCK)?-----|[A-Za-z0-9+/=\s\\]*)", gate="PRIVATE KEY", multiline=True,
       screen="-----BEGIN[A-Z0-9 ]{0,30}PRIVATE KEY"),
    _d("ANTHROPIC_KEY", "secret", r"sk-ant-(?:api|admin|oat|sid)\d{2}-[A-Za-z0-9_\-]{20,}" + _E, not_after=_TOKEN,
       gate="sk-ant-",
       screen=r"sk-ant-(?:api|admin|oat|sid)[0-9]{2}-[A-Za-z0-9_\-]{20}"),
    _d("OPENAI_KEY", "secret", r"sk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_\-]{20,}" + _E, not_after=_TOKEN,
       gate="sk-",
       screen=r"sk-[A-Za-z0-9_\-]{20}"),
    _d("AWS_ACCESS_KEY", "secret", r"(?:AKIA|ASIA|ABIA|ACCA|AROA|AIDA|AGPA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16}(?![A-Z0-9])",
       not_after="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
       screen="(?:AKIA|ASIA|ABIA|ACCA|AROA|AIDA|AGPA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16}"),
    _d("AWS_SECRET_KEY", "secret",
       r"[Aa](?i:ws).{0,30}?(?i:secret|sk)[\w\s\"']{0,25}?[:=>]{1,2}\s*[\"']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])", 1,
       gate=("aws",), multiline=True,
       screen=r"(?i:aws).{0,30}(?i:secret|sk)"),
    # A 40-char base64 run within a sentence of an access key id is its secret, whatever its letters.
    _d("AWS_SECRET_KEY", "secret",
       r"(?:AKIA|ASIA)[A-Z0-9]{16}[^\n]{0,100}?(?<![A-Za-z0-9/+=])([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])", 1,
       screen="(?:AKIA|ASIA)[A-Z0-9]{16}"),
    _d("AWS_SECRET_KEY", "secret", r"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])", 0, _high_entropy_40_ok, not_after=_B64,
       needs=_b64_run(40),
       screen="[A-Za-z0-9/+]{40}"),
    _d("GITHUB_TOKEN", "secret", r"(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})" + _E,
       not_after=_TOKEN,
       screen="gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{22}"),
    _d("GITLAB_TOKEN", "secret", r"glpat-[A-Za-z0-9_\-]{20,}" + _E, not_after=_TOKEN, gate="glpat-",
       screen=r"glpat-[A-Za-z0-9_\-]{20}"),
    _d("GOOGLE_API_KEY", "secret", r"AIza[0-9A-Za-z_\-]{35}" + _E, not_after=_TOKEN, gate="AIza",
       screen=r"AIza[0-9A-Za-z_\-]{35}"),
    _d("GOOGLE_OAUTH_TOKEN", "secret", r"ya29\.[0-9A-Za-z_\-]{20,}" + _E, not_after=_TOKEN, gate="ya29.",
       screen=r"ya29\.[0-9A-Za-z_\-]{20}"),
    _d("GOOGLE_OAUTH_TOKEN", "secret", r"GOCSPX-[A-Za-z0-9_\-]{20,}" + _E, not_after=_TOKEN, gate="GOCSPX-",
       screen=r"GOCSPX-[A-Za-z0-9_\-]{20}"),
    _d("SLACK_TOKEN", "secret", r"xox[abposre]-[A-Za-z0-9\-]{10,}" + _E, not_after=_TOKEN, gate="xox",
       screen=r"xox[abposre]-[A-Za-z0-9\-]{10}"),
    _d("SLACK_TOKEN", "secret", r"xapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+" + _E, not_after=_TOKEN, gate="xapp-",
       screen="xapp-[0-9]-[A-Z0-9]+-[0-9]+-[a-z0-9]"),
    _d("SLACK_WEBHOOK", "secret", r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_\-]{20,}",
       gate="hooks.slack.com",
       screen=r"https://hooks\.slack\.com/(?:services|workflows)/"),
    _d("STRIPE_KEY", "secret", r"[spr]k_(?:live|test)_[A-Za-z0-9]{16,}" + _E, not_after=_TOKEN, gate="k_",
       screen="[spr]k_(?:live|test)_[A-Za-z0-9]{16}"),
    _d("HUGGINGFACE_TOKEN", "secret", r"hf_[A-Za-z0-9]{30,}" + _E, not_after=_TOKEN, gate="hf_",
       screen="hf_[A-Za-z0-9]{30}"),
    _d("NPM_TOKEN", "secret", r"npm_[A-Za-z0-9]{36}" + _E, not_after=_TOKEN, gate="npm_",
       screen="npm_[A-Za-z0-9]{36}"),
    _d("JWT", "secret", r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}" + _E, not_after=_TOKEN,
       gate="eyJ",
       screen=r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8}"),
    _d("SECRET", "secret", r"[Bb](?i:earer)\s+([A-Za-z0-9._~+/\-]{20,}=*)", 1, not_after=_TOKEN, gate=("bearer",),
       multiline=True,
       screen="(?i:bearer)" + _ASCII_SPACE + r"+[A-Za-z0-9._~+/\-]{20}"),
    _d("SECRET", "secret", r"[a-z][a-z0-9+.\-]{1,20}://[^/\s:@\"']{1,64}:([^/\s:@\"']{3,128})@", 1, gate="://",
       screen="[a-z][a-z0-9+.\\-]{1,20}://[^/:@\"']{1,64}:[^/:@\"']{3,128}@"),
    _d("SECRET", "secret",
       r"(?:[Pp](?i:assword|asswd|assphrase|wd|rivate[_\-]?token)|[Cc](?i:lient_secret)|[Ss](?i:ecret_key|ecret)|"
       r"[Aa](?i:pi[_\-]?key|ccess[_\-]?token|uth[_\-]?token))[\"']?\s*(?:[:=]|=>)\s*[\"']?([^\s\"',;`)\]}]{6,200})",
       1, _assigned_secret_ok, not_after="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
       gate=_SECRET_WORDS, multiline=True,
       screen="(?i:pass(?:word|wd|phrase)|pwd|private[_\\-]?token|client_secret|secret(?:_key)?|api[_\\-]?key|"
              "access[_\\-]?token|auth[_\\-]?token)[\"']?" + _ASCII_SPACE + "*[:=]"),
    _d("EMAIL", "pii", r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63})*\.[A-Za-z]{2,24}"
       r"(?![A-Za-z0-9\-])", not_after="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-", gate="@",
       screen=r"[A-Za-z0-9._%+\-]@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63})*\.[A-Za-z]{2}"),
    _d("CREDIT_CARD", "pii", r"\d(?:[ \-]?\d){12,18}(?![\d\-])", 0, _card_ok, not_after="0123456789-", min_digits=13,
       screen=r"[0-9](?:[ \-]?[0-9]){12}"),
    _d("SSN", "pii", r"\d{3}-\d{2}-\d{4}(?![\d\-])", 0, _ssn_ok, not_after="0123456789-", gate="-", min_digits=9,
       needs=_searches(r"-\d{2}-\d{4}"),
       screen="[0-9]{3}-[0-9]{2}-[0-9]{4}"),
    _d("SSN", "pii", r"[Ss](?i:sn|ocial security(?: number| no\.?)?)\b\D{0,20}?(\d{3} \d{2} \d{4}|\d{9})(?!\d)", 1,
       gate=("ssn", "social security"), min_digits=9, multiline=True,
       screen="(?i:ssn|social security)[^0-9]{0,27}[0-9]{3}"),
    _d("UK_NINO", "pii", r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]"
       r"(?![A-Za-z0-9])", 0, _nino_ok, not_after=_TOKEN, min_digits=6,
       screen="[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]"),
    _d("PHONE", "pii", r"\+[1-9]\d{0,2}(?:[ .\-]?\(\d{1,4}\))?(?:[ .\-]?\d{1,5}){2,5}(?![\w\-])", 0, _phone_ok,
       not_after=_TOKEN + "+", gate="+", min_digits=3, needs=_searches(r"\+[1-9]"),
       screen=r"\+[1-9]"),
    _d("PHONE", "pii", r"(?:\([2-9]\d{2}\) ?|[2-9]\d{2}[.\-])[2-9]\d{2}[.\-]\d{4}(?![\w\-]|\.\d)",
       not_after=_TOKEN + ".+/", min_digits=10, needs=_searches(r"\d[.\-]\d{4}"),
       screen=r"(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[.\-])[2-9][0-9]{2}[.\-][0-9]{4}"),
    _d("PHONE", "pii",
       r"(?:[Pp](?i:hone)|[Tt](?i:elephone|el)|[Mm](?i:obile)|[Cc](?i:ell|all me at|all)|[Ff](?i:ax)|[Ww](?i:hatsapp))"
       r"\b\D{0,15}?((?:\(?\d{2,5}\)?[ .\-]?){2,4}\d{2,5})"
       r"(?![\w\-])", 1, _phone_ok, not_after="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", gate=_PHONE_WORDS,
       min_digits=6, multiline=True,
       screen="(?i:phone|tel|mobile|cell|call|fax|whatsapp)[^0-9]{0,22}[0-9]{2}"),
    _d("IP_ADDRESS", "pii", r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?!\w|\.\d)",
       0, _ipv4_ok, not_after=_TOKEN + ".", min_digits=4, needs=_searches(r"\.\d{1,3}\.\d"),
       screen=r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}"),
    _d("IP_ADDRESS", "pii", r"(?:[0-9A-Fa-f]{1,4}:|:)(?:[0-9A-Fa-f]{0,4}:){1,6}[0-9A-Fa-f]{0,4}(?![\w:])", 0, _ipv6_ok,
       not_after=_TOKEN + ":.", gate="::",
       screen="::"),
    _d("IP_ADDRESS", "pii", r"[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){7}(?![\w:])", 0, _ipv6_ok, not_after=_TOKEN + ":.",
       gate=":", needs=_searches(r":[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:"),
       screen=":[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){6}"),
)

SECRET_KINDS = tuple(dict.fromkeys(d.kind for d in DETECTORS if d.family == "secret"))
PII_KINDS = tuple(dict.fromkeys(d.kind for d in DETECTORS if d.family == "pii"))


def find_sensitive(text: str | None, detectors: Iterable[Detector] = DETECTORS) -> list[Finding]:
    """Non-overlapping findings in `text`, in text order."""
    if not text:
        return []
    return _resolve(_scan(text, enumerate(detectors)))


_Hit = tuple[int, int, int, Finding]  # (start, priority, -length, finding): the order overlaps resolve in
_Entry = tuple[str | None, tuple[tuple[str, int], ...]]  # a redacted copy (None: nothing found), the kinds found
_V = TypeVar("_V")


def _scan(text: str, detectors: Iterable[tuple[int, Detector]]) -> list[_Hit]:
    """Every match of every (priority, detector) in `text`, overlapping ones included."""
    lower: str | None = None
    digits = -1
    found: list[_Hit] = []
    for priority, det in detectors:
        # Cheapest first: one substring, the digit count (computed once per text), `needs`, then the
        # keywords (one scan of the lower-cased text per keyword: ~6 us each on 9 KB).
        if isinstance(det.gate, str) and det.gate not in text:
            continue
        if det.min_digits:
            digits = _ascii_digit_count(text) if digits < 0 else digits
            if digits < det.min_digits:
                continue
        if det.needs is not None and not det.needs(text):
            continue
        matches: Iterable[re.Match[str]]
        if isinstance(det.gate, tuple):
            lower = text.lower() if lower is None else lower
            for word in det.gate:  # most texts hold none: `in` is the cheapest look
                if word in lower:
                    break
            else:
                continue
            if text.isascii():  # lower-casing keeps its offsets: try the pattern where a keyword starts
                matches = _matches_at(det.pattern, text, _keyword_starts(lower, det.gate))
            else:
                matches = det.pattern.finditer(text)
        else:
            matches = det.pattern.finditer(text)
        for m in matches:
            if det.not_after and m.start() > 0 and text[m.start() - 1] in det.not_after:
                continue
            start, end = m.span(det.group)
            if start < 0 or end <= start:
                continue
            value = text[start:end]
            if _PLACEHOLDER_RE.fullmatch(value) or (det.validate and not det.validate(value)):
                continue
            found.append((start, priority, -(end - start), Finding(det.kind, det.family, start, end, value)))
    return found


def _keyword_starts(lower: str, keywords: tuple[str, ...]) -> list[int]:
    """Every offset of `lower` where one of `keywords` starts, in order (an offset where two start
    is listed twice: its second try fails as the first did, or lies inside that match)."""
    starts: list[int] = []
    for word in keywords:
        i = lower.find(word)
        while i >= 0:
            starts.append(i)
            i = lower.find(word, i + 1)
    if len(keywords) > 1:
        starts.sort()
    return starts


def _matches_at(pattern: re.Pattern[str], text: str, starts: list[int]) -> Iterator[re.Match[str]]:
    """`pattern.finditer(text)` for a pattern whose every match begins at one of `starts`: a match
    tried at each start past the previous match, where finditer resumes (with the whole text as
    context, so `\\b` and lookbehinds see what precedes a start). On a 9 KB system prompt the phone
    keyword pattern took 422 us by finditer (re tries each keyword at every candidate letter), 48 us so."""
    end = 0
    for pos in starts:
        if pos >= end and (m := pattern.match(text, pos)):
            yield m
            end = max(m.end(), pos + 1)


def _resolve(found: list[_Hit]) -> list[Finding]:
    """The findings that survive overlaps: by start, then detector priority, then the longer one."""
    found.sort(key=lambda f: f[:3])
    out: list[Finding] = []
    claimed_to = -1
    for start, _, _, finding in found:
        if start >= claimed_to:
            out.append(finding)
            claimed_to = finding.end
    return out


_LINE_DETECTORS = tuple((i, d) for i, d in enumerate(DETECTORS) if not d.multiline)
_MULTILINE_DETECTORS = tuple((i, d) for i, d in enumerate(DETECTORS) if d.multiline)


def screen_pattern(detectors: Iterable[tuple[int, Detector]]) -> str | None:
    """One pattern that matches wherever one of `detectors` may find something (None: any text may)."""
    screens = [d.screen for _, d in detectors]
    if any(screen is None for screen in screens):
        return None
    return "|".join(f"(?:{screen})" for screen in screens)


_LINE_SCREEN = screen_pattern(_LINE_DETECTORS)
_MULTILINE_SCREEN = screen_pattern(_MULTILINE_DETECTORS)
# A short text is screened by both, in two passes: as one alternation the two took 4x as long (the
# keyword screens' bounded gaps beside the line screens overflow the lazy DFA's cache).
_ALL_SCREENS = (_LINE_SCREEN, _MULTILINE_SCREEN)


def may_hold_sensitive(texts: Sequence[str], *screens: str | None) -> list[bool]:
    """Per text, False where no detector behind `screens` can find anything: vectorized regex passes
    (polars, Rust's `regex`) instead of a Python loop over the detectors per text. Most texts hold
    nothing (1.4% of the bench's new short texts do), so most skip the scan. Only ASCII texts are
    screened: the screens are written for it (`\\d`, `\\s` and case folding differ between the two
    engines outside ASCII), and polars cannot hold a lone surrogate."""
    flags = [True] * len(texts)
    patterns = [screen for screen in screens if screen is not None]
    ascii_at = [i for i, text in enumerate(texts) if text.isascii()]
    if not ascii_at or not patterns or len(patterns) < len(screens):
        return flags
    column = pl.Series([texts[i] for i in ascii_at], dtype=pl.String)
    matched = column.str.contains(patterns[0])
    for pattern in patterns[1:]:
        matched |= column.str.contains(pattern)
    for i, hit in zip(ascii_at, matched.to_list(), strict=True):
        flags[i] = hit
    return flags


CHUNKED_MIN_CHARS = SPLIT_MIN_CHARS  # shorter texts are scanned whole (splitting costs more than it saves)


def redact(text: str | None, counts: Counter[str] | None = None) -> str | None:
    """`text` with every finding replaced by its typed placeholder; `counts` (if given) is updated by kind."""
    return _replace(text, find_sensitive(text), counts)


def _replace(text: str | None, findings: list[Finding], counts: Counter[str] | None) -> str | None:
    if not findings or text is None:
        return text
    parts: list[str] = []
    pos = 0
    for f in findings:
        parts.append(text[pos : f.start])
        parts.append(PLACEHOLDER.format(kind=f.kind))
        pos = f.end
        if counts is not None:
            counts[f.kind] += 1
    parts.append(text[pos:])
    return "".join(parts)


class CachedRedactor:
    """`redact` memoized by content hash: system prompts and tool results repeat across thousands of
    examples, so the scan cost follows the distinct text, not the traffic (as TokenCounter does).

    A long text is scanned paragraph by paragraph (cut after blank lines, `pipeline.tokens.paragraphs`,
    the same parts the token memos use), each
    paragraph's line-bound findings (`_LINE_DETECTORS`: their patterns never match a line break, so
    no match crosses a paragraph; a lookaround at a paragraph's edge sees the same line break or
    nothing) memoized too, and the detectors that can match across lines run on the whole text: a
    system prompt whose template differs by one line per request (a timestamp, a user's name) is then
    scanned once, not once per variant (the bench's 1,907 distinct system prompts of 10 KB in 20k
    requests hold 130 KB of distinct paragraphs). The findings are exactly the whole-text ones
    (`tests/test_redact_prefilters.py`).

    Memory stays bounded: a text without findings is remembered by its hash alone (the caller
    already holds the text), and each cache is emptied once it holds `max_entries` texts or
    `max_chars` characters of redacted copies.
    """

    def __init__(self, max_entries: int = 200_000, max_chars: int = 20_000_000) -> None:
        self._cache: dict[bytes, tuple[str | None, tuple[tuple[str, int], ...]]] = {}
        self._paragraphs: dict[bytes, tuple[_Hit, ...]] = {}
        self._max = max_entries
        self._max_chars = max_chars
        self._chars = 0

    def redact(self, text: str | None, counts: Counter[str]) -> str | None:
        """Redacted `text`; adds the kinds found to `counts`."""
        [(redacted, found)] = self.redact_all([text])
        for kind, n in found:
            counts[kind] += n
        return redacted

    def redact_all(self, texts: Sequence[str | None]) -> list[tuple[str | None, tuple[tuple[str, int], ...]]]:
        """Per text, its redacted copy (the text itself when nothing is found) and the (kind, count)s
        found. The texts not seen before are screened and scanned as one batch."""
        keys = [xxhash.xxh3_128_digest(text.encode("utf-8", "surrogatepass")) if text else None for text in texts]
        entries, new = _known_and_new(keys, texts, self._cache)
        for (key, text), found in zip(new.items(), self.findings_all(list(new.values())), strict=True):
            entries[key] = self._remember(key, text, found)
        out: list[tuple[str | None, tuple[tuple[str, int], ...]]] = []
        for key, text in zip(keys, texts, strict=True):
            if key is None:
                out.append((text, ()))
            else:
                redacted, kinds = entries[key]
                out.append((text if redacted is None else redacted, kinds))
        return out

    def _remember(self, key: bytes, text: str, found: list[Finding]) -> _Entry:
        kinds: Counter[str] = Counter()
        redacted = _replace(text, found, kinds) or ""
        entry = (redacted if kinds else None, tuple(kinds.items()))
        if len(self._cache) >= self._max or self._chars >= self._max_chars:
            self._cache.clear()  # bounded memory; a cold cache only costs time
            self._chars = 0
        self._cache[key] = entry
        self._chars += len(redacted) if kinds else 0
        return entry

    def findings(self, text: str) -> list[Finding]:
        """`find_sensitive(text)`, a long text by paragraph (see the class)."""
        return self.findings_all([text])[0]

    def findings_all(self, texts: Sequence[str]) -> list[list[Finding]]:
        """`find_sensitive` of each text: the batch screened first (`may_hold_sensitive`), long texts
        by paragraph (see the class)."""
        parts = [long_text_paragraphs(text, CHUNKED_MIN_CHARS) for text in texts]
        out: list[list[Finding]] = [[] for _ in texts]
        short = [i for i, p in enumerate(parts) if p is None]
        for i, flagged in zip(short, may_hold_sensitive([texts[i] for i in short], *_ALL_SCREENS), strict=True):
            if flagged:
                out[i] = find_sensitive(texts[i])
        long = [(i, p) for i, p in enumerate(parts) if p is not None]
        if not long:
            return out
        paragraph_hits = iter(self._paragraph_hits([paragraph for _, ps in long for paragraph in ps]))
        whole = may_hold_sensitive([texts[i] for i, _ in long], _MULTILINE_SCREEN)
        for (i, paragraphs), flagged in zip(long, whole, strict=True):
            hits = _scan(texts[i], _MULTILINE_DETECTORS) if flagged else []
            offset = 0
            for paragraph in paragraphs:
                for start, priority, neg_len, f in next(paragraph_hits):
                    hits.append((start + offset, priority, neg_len,
                                 Finding(f.kind, f.family, f.start + offset, f.end + offset, f.value)))
                offset += len(paragraph)
            out[i] = _resolve(hits)
        return out

    def _paragraph_hits(self, paragraphs: list[str]) -> list[tuple[_Hit, ...]]:
        """The line-bound detectors' hits in each paragraph, memoized; the new ones screened as a batch."""
        keys = [xxhash.xxh3_128_digest(p.encode("utf-8", "surrogatepass")) for p in paragraphs]
        hits, new = _known_and_new(keys, paragraphs, self._paragraphs)
        for (key, paragraph), flagged in zip(new.items(), may_hold_sensitive(list(new.values()), _LINE_SCREEN),
                                             strict=True):
            if len(self._paragraphs) >= self._max:
                self._paragraphs.clear()
            self._paragraphs[key] = hits[key] = tuple(_scan(paragraph, _LINE_DETECTORS)) if flagged else ()
        return [hits[key] for key in keys]


def _known_and_new(keys: Sequence[bytes | None], texts: Sequence[str | None],
                   cache: dict[bytes, _V]) -> tuple[dict[bytes, _V], dict[bytes, str]]:
    """What `cache` holds for `keys` (read now: adding the new entries may empty it), and the text
    of each key it lacks, once per key (None keys: empty texts, skipped)."""
    known: dict[bytes, _V] = {}
    new: dict[bytes, str] = {}
    for key, text in zip(keys, texts, strict=True):
        if key is None or text is None or key in known or key in new:
            continue
        hit = cache.get(key)
        if hit is None:
            new[key] = text
        else:
            known[key] = hit
    return known, new
