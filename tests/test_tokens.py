from __future__ import annotations

import random

import pytest

from audit import token_accounting
from audit.token_accounting import TokenMemo
from pipeline import tokens
from pipeline.tokens import TokenCounter, encoding_name_for, get_encoding, is_approximate


def test_offline_encodings_load_and_roundtrip() -> None:
    for name in ("o200k_base", "cl100k_base"):
        enc = get_encoding(name)
        text = "Prompt caching discounts the repeated prefix, not the user's input."
        assert enc.decode(enc.encode_ordinary(text)) == text
    # Known ids: these differ between the two encodings, so the right files were loaded.
    assert get_encoding("cl100k_base").encode_ordinary("hello") == [15339]
    assert get_encoding("o200k_base").encode_ordinary("hello") == [24912]


def test_counter_memoizes_repeated_text() -> None:
    c = TokenCounter()
    system = "You are a support bot. " * 200
    counts = [c.count(system) for _ in range(50)]
    assert len(set(counts)) == 1 and counts[0] > 500
    assert c.misses == 1 and c.hits == 49


def test_model_to_encoding() -> None:
    assert encoding_name_for("gpt-4o-mini") == "o200k_base"
    assert encoding_name_for("gpt-4-0613") == "cl100k_base"
    assert is_approximate("claude-sonnet-4-5") and not is_approximate("gpt-4.1-mini")


def _random_text(rng: random.Random, n: int) -> str:
    """Text over what decides where the pre-tokenizers cut: line breaks and blank lines, spaces and
    tabs, slashes, punctuation, apostrophes, digits, capitals, combining marks, other scripts."""
    atoms = ["\n\n", "\n", " ", "  ", "\t", "/", "//", ".", "!?", "'s", "'", "word", "Word", "WORD", "12345",
             "é", "e\u0301", "日本", "\u00a0", "\x1c", "\r\n", " /path", "-"]
    return "".join(rng.choice(atoms) for _ in range(n))


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
def test_a_long_text_counts_as_the_sum_of_its_paragraphs(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The paragraph cut never changes a count or a token (the dataset's counts, the audit's token
    arrays): random texts dense in every character that decides a
    pre-tokenizer's cut (slashes after blank lines, whitespace runs, marks), each counted whole
    by tiktoken and by paragraphs; the cut happens, and some blank lines are (rightly) not cut."""
    monkeypatch.setattr(tokens, "SPLIT_MIN_CHARS", 0)
    monkeypatch.setattr(token_accounting, "SPLIT_MIN_CHARS", 0)
    enc = get_encoding(name)
    rng = random.Random(3)
    cut = kept = 0
    for _ in range(3_000):
        text = _random_text(rng, rng.randint(1, 60))
        parts = tokens.paragraphs(text)
        assert "".join(parts) == text
        cut += len(parts) - 1
        kept += text.count("\n\n") - (len(parts) - 1)
        expected = enc.encode_ordinary(text)
        assert TokenCounter(name).count(text) == len(expected), repr(text)
        assert TokenMemo().tokens(name, text).tolist() == expected, repr(text)  # the audit's token arrays
    assert cut > 1_000 and kept > 1_000


def test_paragraph_counts_are_memoized_across_texts() -> None:
    """Two long texts that differ in one paragraph: the shared paragraphs are tokenized once."""
    c = TokenCounter()
    shared = "You answer shopper questions.\n\n" + "Catalogue notes follow. " * 120 + "\n\n"
    first, second = shared + "Current time: 09:00", shared + "Current time: 10:00"
    enc = get_encoding()
    assert c.count(first) == len(enc.encode_ordinary(first)) and c.count(second) == len(enc.encode_ordinary(second))
    assert c.misses == 2 + 4 and c.hits == 2  # two texts; 3 paragraphs, then 1 new; the shared 2 hit once each
