from __future__ import annotations

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
