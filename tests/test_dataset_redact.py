"""Secret/PII detection: each kind is found and typed, checked numbers are checked, ordinary text is left alone."""

from __future__ import annotations

from collections import Counter

import pytest

from pipeline.dataset.redact import find_sensitive, redact

# Values shaped like the real thing; none is a live credential.
POSITIVES = [
    ("OPENAI_KEY", "sk-proj-" + "Ab3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI3kM5oQ7sU9wY1aC3eG5iK7mO9qS1uW3y"),
    ("OPENAI_KEY", "sk-" + "T3BlbkFJ" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4"),
    ("ANTHROPIC_KEY", "sk-ant-api03-" + "x" * 40 + "Yz09_-" + "A" * 47 + "AA"),
    ("AWS_ACCESS_KEY", "AKIAIOSFODNN7EXAMPLE"),
    ("AWS_SECRET_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("GITHUB_TOKEN", "ghp_" + "aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI3kM5"),
    ("GITHUB_TOKEN", "github_pat_11ABCDEFG0abcdefghijkl_mnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUV"),
    ("GOOGLE_API_KEY", "AIza" + "SyA-1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6"),
    ("SLACK_TOKEN", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"),
    ("JWT", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1X2FiYzEyMyJ9.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"),
    ("PRIVATE_KEY", "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo\n4lgOEePzNm0tRgeLezV6ffAt0gunVTLw\n"
                    "-----END RSA PRIVATE KEY-----"),
    ("EMAIL", "maria.garcia42@example.org"),
    ("PHONE", "(415) 555-0134"),
    ("PHONE", "212-555-0199"),
    ("PHONE", "+1 646 555 0123"),
    ("PHONE", "+44 20 7946 0018"),
    ("PHONE", "+49 30 12345678"),
    ("PHONE", "+33 1 23 45 67 89"),
    ("CREDIT_CARD", "4111 1111 1111 1111"),
    ("CREDIT_CARD", "5500-0055-5555-5559"),
    ("CREDIT_CARD", "4012888888881881"),
    ("SSN", "123-45-6789"),
    ("IP_ADDRESS", "203.0.113.7"),
    ("IP_ADDRESS", "10.12.0.254"),
    ("IP_ADDRESS", "2001:db8::8a2e:370:7334"),
]


@pytest.mark.parametrize(("kind", "value"), POSITIVES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(POSITIVES)])
def test_each_kind_is_found_typed_and_fully_redacted(kind: str, value: str) -> None:
    text = f"Here it is: {value} if you need more detail."
    out = redact(text)
    assert value not in out
    assert f"[REDACTED_{kind}]" in out
    assert out.startswith("Here it is: ") and out.endswith(" if you need more detail.")


def test_aws_secret_next_to_its_access_key_is_redacted_without_a_keyword() -> None:
    text = "the access key is AKIAABCDEFGHIJKLMNOP and the secret is abcdefghijklmnopqrstuvwxyz0123456789ABCD so"
    counts: Counter[str] = Counter()
    out = redact(text, counts)
    assert counts == {"AWS_ACCESS_KEY": 1, "AWS_SECRET_KEY": 1}
    assert "abcdefghij" not in out


def test_secret_inside_json_tool_arguments_keeps_the_json_valid() -> None:
    import json

    args = json.dumps({"token": "ghp_" + "a" * 36, "note": "mail me at a.b@example.com"})
    out = redact(args)
    assert json.loads(out) == {"token": "[REDACTED_GITHUB_TOKEN]", "note": "mail me at [REDACTED_EMAIL]"}


def test_private_key_with_escaped_newlines_is_redacted_whole() -> None:
    body = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo"
    text = '{"key": "-----BEGIN PRIVATE KEY-----\\n' + body + '\\n-----END PRIVATE KEY-----"}'
    assert body not in redact(text)


@pytest.mark.parametrize(
    "value",
    ["4111 1111 1111 1112", "5500-0055-5555-5558", "1234 5678 9012 3456", "0000 0000 0000 0000"],
)
def test_card_numbers_failing_luhn_or_issuer_are_not_redacted(value: str) -> None:
    assert find_sensitive(f"the reference number on the form is {value} if that helps.") == []


@pytest.mark.parametrize("value", ["000-12-3456", "666-12-3456", "900-12-3456", "123-00-4567", "123-45-0000"])
def test_never_issued_ssns_are_not_redacted(value: str) -> None:
    assert find_sensitive(f"ssn field {value}") == []


ORDINARY = """\
Release 2.14.0 shipped on 2026-09-14 at 12:30:45 UTC; the build took 1,234 seconds.
Order #10042 totals $1,299.99 (qty 3). Ticket INC-004512 was escalated to tier 2.
The commit 3f786850e387550fdab836ed7e6dc881de23001b fixed the race; see PR #881.
Request id 550e8400-e29b-41d4-a716-446655440000 returned HTTP 503 after 30000 ms.
def total(items: list[int]) -> int:
    return sum(i * 2 for i in items if i > 10)  # O(n), 64-bit safe
SELECT region, SUM(total) FROM sales WHERE year = 2025 GROUP BY region LIMIT 100;
Call the function with retries=3, timeout=2.5 and backoff 0.25; std::vector<int> v{1, 2, 3};
The token budget is 4096 and the password policy requires 12 characters.
Use the api_key parameter from your environment; the secret is stored in the vault.
Version 1.2.3 of the SDK and IPv6 prefix ::1 are fine; ratio 16:9; time 09:15.
Invoice INV-2026-0042 for 3,450.00 EUR is due 30 days net; IBAN on file.
"""


def test_ordinary_text_has_no_findings() -> None:
    assert find_sensitive(ORDINARY) == []


def test_placeholders_are_stable_under_a_second_pass() -> None:
    once = redact("mail a.b@example.com, key sk-proj-" + "a1" * 20)
    assert redact(once) == once


def test_aws_secret_without_digits_is_still_caught_next_to_its_key_id() -> None:
    secret = "abcdefghijklmnopqrstuvwxyz/ABCDEFGHIJKLM"
    out = redact(f"the access key is AKIAABCDEFGHIJKLMNOP and the secret is {secret} so please check")
    assert secret not in out and "[REDACTED_AWS_SECRET_KEY]" in out
