"""Secrets and PII: detection and typed redaction (`[REDACTED_EMAIL]`, `[REDACTED_OPENAI_KEY]`, …).

Why a regex set of our own rather than a detector library: we checked the candidates that load
offline. `detect-secrets` (Yelp) scans source files line by line, covers secrets only (no email,
phone, card, SSN or IP), has no Anthropic or Google API-key plugin, and its entropy plugins flag
hashes and ids in ordinary text; Presidio covers PII but its analyzer needs a spaCy model at load
time (a download), and its pattern recognizers alone are the same kind of regexes as below without
the provider-key set. So the detectors here are anchored on each provider's documented token
prefix and length (the same shapes gitleaks and detect-secrets use), and PII numbers are checked,
not just matched: cards by the Luhn checksum and issuer prefix, SSNs by the SSA's never-issued
ranges, IPs by `ipaddress`. Recall on the generator's planted secrets and the false-positive rate
on text with none planted are measured in tests/test_dataset_redact.py.

A detector that matches a span another (earlier-starting or higher-priority) detector already
claimed is skipped, so nested shapes (an `sk-ant-…` key is also an `sk-…` string) get one label.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

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


def _d(kind: str, family: str, pattern: str, group: int = 0, validate: Callable[[str], bool] | None = None,
       flags: int = 0) -> Detector:
    return Detector(kind, family, re.compile(pattern, flags), group, validate)


_B = r"(?<![A-Za-z0-9_\-])"  # token start: not inside a longer identifier
_E = r"(?![A-Za-z0-9_\-])"  # token end

# Order is priority when two detectors match at the same offset: specific shapes first.
DETECTORS: tuple[Detector, ...] = (
    _d("PRIVATE_KEY", "secret",
       r"-----BEGIN[A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]{0,12000}?-----END[A-Z0-9 ]{0,30}PRIVATE KEY"
       r"(?: BLOCK)?-----|[A-Za-z0-9+/=\s\\]*)"),
    _d("ANTHROPIC_KEY", "secret", _B + r"sk-ant-(?:api|admin|oat|sid)\d{2}-[A-Za-z0-9_\-]{20,}" + _E),
    _d("OPENAI_KEY", "secret", _B + r"sk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_\-]{20,}" + _E),
    _d("AWS_ACCESS_KEY", "secret", r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|AROA|AIDA|AGPA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16}(?![A-Z0-9])"),
    _d("AWS_SECRET_KEY", "secret",
       r"(?i)aws.{0,30}?(?:secret|sk)[\w\s\"']{0,25}?[:=>]{1,2}\s*[\"']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])", 1),
    # A 40-char base64 run within a sentence of an access key id is its secret, whatever its letters.
    _d("AWS_SECRET_KEY", "secret",
       r"(?:AKIA|ASIA)[A-Z0-9]{16}[^\n]{0,100}?(?<![A-Za-z0-9/+=])([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])", 1),
    _d("AWS_SECRET_KEY", "secret", r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])", 0, _high_entropy_40_ok),
    _d("GITHUB_TOKEN", "secret", _B + r"(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})" + _E),
    _d("GITLAB_TOKEN", "secret", _B + r"glpat-[A-Za-z0-9_\-]{20,}" + _E),
    _d("GOOGLE_API_KEY", "secret", _B + r"AIza[0-9A-Za-z_\-]{35}" + _E),
    _d("GOOGLE_OAUTH_TOKEN", "secret", _B + r"(?:ya29\.[0-9A-Za-z_\-]{20,}|GOCSPX-[A-Za-z0-9_\-]{20,})" + _E),
    _d("SLACK_TOKEN", "secret", _B + r"xox[abposre]-[A-Za-z0-9\-]{10,}" + _E),
    _d("SLACK_TOKEN", "secret", _B + r"xapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+" + _E),
    _d("SLACK_WEBHOOK", "secret", r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_\-]{20,}"),
    _d("STRIPE_KEY", "secret", _B + r"(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}" + _E),
    _d("HUGGINGFACE_TOKEN", "secret", _B + r"hf_[A-Za-z0-9]{30,}" + _E),
    _d("NPM_TOKEN", "secret", _B + r"npm_[A-Za-z0-9]{36}" + _E),
    _d("JWT", "secret", _B + r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}" + _E),
    _d("SECRET", "secret", r"(?i)\bbearer\s+([A-Za-z0-9._~+/\-]{20,}=*)", 1),
    _d("SECRET", "secret", r"\b[a-z][a-z0-9+.\-]{1,20}://[^/\s:@\"']{1,64}:([^/\s:@\"']{3,128})@", 1),
    _d("SECRET", "secret",
       r"(?i)\b(?:password|passwd|passphrase|pwd|client_secret|secret_key|api[_\-]?key|access[_\-]?token|"
       r"auth[_\-]?token|private[_\-]?token|secret)[\"']?\s*(?:[:=]|=>)\s*[\"']?([^\s\"',;`)\]}]{6,200})",
       1, _assigned_secret_ok),
    _d("EMAIL", "pii", r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63})*"
       r"\.[A-Za-z]{2,24}(?![A-Za-z0-9\-])"),
    _d("CREDIT_CARD", "pii", r"(?<![\d\-])(?:\d[ \-]?){12,18}\d(?![\d\-])", 0, _card_ok),
    _d("SSN", "pii", r"(?<![\d\-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d\-])"),
    _d("SSN", "pii", r"(?i)\b(?:ssn|social security(?: number| no\.?)?)\b\D{0,20}?(\d{3} \d{2} \d{4}|\d{9})(?!\d)", 1),
    _d("UK_NINO", "pii", r"(?<![A-Za-z0-9])(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]"
       r"(?![A-Za-z0-9])"),
    _d("PHONE", "pii", r"(?<![\w+])\+[1-9]\d{0,2}(?:[ .\-]?\(\d{1,4}\))?(?:[ .\-]?\d{1,5}){2,5}(?![\w\-])", 0, _phone_ok),
    _d("PHONE", "pii", r"(?<![\w.+\-/])(?:\([2-9]\d{2}\) ?|[2-9]\d{2}[.\-])[2-9]\d{2}[.\-]\d{4}(?![\w\-]|\.\d)"),
    _d("PHONE", "pii",
       r"(?i)\b(?:phone|tel|telephone|mobile|cell|call me at|call|fax|whatsapp)\b\D{0,15}?((?:\(?\d{2,5}\)?[ .\-]?){2,4}\d{2,5})(?![\w\-])",
       1, _phone_ok),
    _d("IP_ADDRESS", "pii", r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w]|\.\d)",
       0, _ipv4_ok),
    _d("IP_ADDRESS", "pii", r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])", 0, _ipv6_ok),
)

SECRET_KINDS = tuple(dict.fromkeys(d.kind for d in DETECTORS if d.family == "secret"))
PII_KINDS = tuple(dict.fromkeys(d.kind for d in DETECTORS if d.family == "pii"))


def find_sensitive(text: str | None, detectors: Iterable[Detector] = DETECTORS) -> list[Finding]:
    """Non-overlapping findings in `text`, in text order."""
    if not text:
        return []
    found: list[tuple[int, int, int, Finding]] = []
    for priority, det in enumerate(detectors):
        for m in det.pattern.finditer(text):
            start, end = m.span(det.group)
            if start < 0 or end <= start:
                continue
            value = text[start:end]
            if _PLACEHOLDER_RE.fullmatch(value) or (det.validate and not det.validate(value)):
                continue
            found.append((start, priority, -(end - start), Finding(det.kind, det.family, start, end, value)))
    found.sort(key=lambda f: f[:3])
    out: list[Finding] = []
    claimed_to = -1
    for start, _, _, finding in found:
        if start >= claimed_to:
            out.append(finding)
            claimed_to = finding.end
    return out


def redact(text: str | None, counts: Counter[str] | None = None) -> str | None:
    """`text` with every finding replaced by its typed placeholder; `counts` (if given) is updated by kind."""
    findings = find_sensitive(text)
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
