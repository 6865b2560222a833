"""Provider usage -> the store's exclusive token buckets (pipeline/ingest/rows.py, formats.md §0.2),
every branch worked by hand: inclusive vs exclusive input, the clamp at zero, the Anthropic write
split and its remainder, and what counts as missing usage."""

from __future__ import annotations

import pytest

from pipeline.ingest.rows import usage_anthropic, usage_buckets, usage_inclusive, usage_openai

BUCKETS = ("in_uncached", "in_cache_read", "in_cache_write_5m", "in_cache_write_1h", "in_cache_write_unspecified",
           "out_total", "out_reasoning")


def buckets(row: dict) -> tuple:
    return tuple(row[k] for k in BUCKETS) + (row["usage_missing"],)


def test_openai_chat_prompt_tokens_include_the_cached_ones() -> None:
    row = usage_openai({"prompt_tokens": 2000, "completion_tokens": 300,
                        "prompt_tokens_details": {"cached_tokens": 1152},
                        "completion_tokens_details": {"reasoning_tokens": 200}})
    assert buckets(row) == (848, 1152, None, None, None, 300, 200, False)
    assert row["usage_raw"] is not None


def test_openai_responses_input_tokens_and_cache_writes() -> None:
    row = usage_openai({"input_tokens": 3000, "output_tokens": 50, "input_tokens_details": {
        "cached_tokens": 1024, "cache_write_tokens": 1500}, "output_tokens_details": {"reasoning_tokens": 0}})
    assert buckets(row) == (476, 1024, None, None, 1500, 50, 0, False)


def test_deepseek_hit_tokens_are_the_cache_read() -> None:
    row = usage_openai({"prompt_tokens": 900, "completion_tokens": 10, "prompt_cache_hit_tokens": 640,
                        "prompt_cache_miss_tokens": 260})
    assert buckets(row) == (260, 640, None, None, None, 10, None, False)
    # OpenAI's own field wins when both are present
    row = usage_openai({"prompt_tokens": 900, "completion_tokens": 10, "prompt_cache_hit_tokens": 640,
                        "prompt_tokens_details": {"cached_tokens": 512}})
    assert row["in_cache_read"] == 512 and row["in_uncached"] == 388


def test_inclusive_clamps_an_inconsistent_source_at_zero() -> None:
    assert usage_inclusive(total_input=100, cache_read=100)["in_uncached"] == 0
    assert usage_inclusive(total_input=100, cache_read=101)["in_uncached"] == 0  # -1 clamped
    assert usage_inclusive(total_input=100, cache_read=99)["in_uncached"] == 1
    assert usage_inclusive(total_input=None, cache_read=5)["in_uncached"] is None
    assert usage_inclusive(total_input=100, cache_read=None, cache_write=30)["in_uncached"] == 70


@pytest.mark.parametrize("value", [-1, 0, 1])
def test_every_bucket_clamped_at_zero_not_above(value: int) -> None:
    row = usage_buckets(uncached=value, cache_read=value, write_5m=value, write_1h=value, write_unspecified=value,
                        output=value, reasoning=value)
    assert buckets(row)[:-1] == (max(value, 0),) * 7


def test_missing_only_when_every_count_is_absent() -> None:
    assert usage_buckets()["usage_missing"] is True
    assert usage_buckets(output=0)["usage_missing"] is False
    assert usage_buckets(reasoning=0)["usage_missing"] is False
    assert usage_buckets(write_1h=0)["usage_missing"] is False
    assert usage_openai(None)["usage_missing"] is True and usage_openai(None)["usage_raw"] is None
    assert usage_anthropic("n/a")["usage_missing"] is True


def test_anthropic_input_excludes_cache_reads_and_writes() -> None:
    row = usage_anthropic({"input_tokens": 12, "cache_read_input_tokens": 4000, "cache_creation_input_tokens": 1500,
                           "output_tokens": 80})
    assert buckets(row) == (12, 4000, None, None, 1500, 80, None, False)  # TTL not said: unspecified


def test_anthropic_ttl_split_and_remainder() -> None:
    split = {"input_tokens": 5, "cache_creation_input_tokens": 3000, "output_tokens": 1,
             "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000}}
    assert buckets(usage_anthropic(split))[:5] == (5, None, 1000, 2000, None)  # nothing left over
    more = {**split, "cache_creation_input_tokens": 3001}
    assert buckets(usage_anthropic(more))[:5] == (5, None, 1000, 2000, 1)  # one token of unknown TTL
    less = {**split, "cache_creation_input_tokens": 2999}
    assert buckets(usage_anthropic(less))[:5] == (5, None, 1000, 2000, None)  # never negative
    only_1h = {"input_tokens": 5, "cache_creation_input_tokens": 700,
               "cache_creation": {"ephemeral_1h_input_tokens": 500}}
    assert buckets(usage_anthropic(only_1h))[:5] == (5, None, None, 500, 200)
    no_total = {"input_tokens": 5, "cache_creation": {"ephemeral_5m_input_tokens": 300}}
    assert buckets(usage_anthropic(no_total))[:5] == (5, None, 300, None, None)
    thinking = {"input_tokens": 5, "output_tokens": 90, "output_tokens_details": {"thinking_tokens": 60}}
    assert usage_anthropic(thinking)["out_reasoning"] == 60


def test_openai_chat_shape_with_either_field_alone() -> None:
    assert buckets(usage_openai({"prompt_tokens": 100})) == (100, None, None, None, None, None, None, False)
    assert buckets(usage_openai({"completion_tokens": 7})) == (None, None, None, None, None, 7, None, False)


def test_anthropic_5m_split_only_leaves_the_rest_unspecified() -> None:
    only_5m = {"input_tokens": 5, "cache_creation_input_tokens": 1500,
               "cache_creation": {"ephemeral_5m_input_tokens": 1000}}
    row = usage_anthropic(only_5m)
    assert buckets(row)[:5] == (5, None, 1000, None, 500)
    assert row["usage_raw"] is not None
    zero = {"input_tokens": 5, "cache_creation_input_tokens": 0}
    assert buckets(usage_anthropic(zero))[:5] == (5, None, None, None, 0)
