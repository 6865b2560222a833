"""Bare provider bodies (tests/cases/bodies/): OpenAI-compatible providers, Gemini, Cohere,
Bedrock Converse, legacy completions, error bodies — exclusive buckets checked by hand (formats.md §0.2)."""

from __future__ import annotations

import pytest
from format_cases import Ingested, assert_reconciles, buckets, ingest_case

# (uncached, cache read, write 5m, write 1h, write unspecified, output, reasoning)


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    return ingest_case("bodies", tmp_path_factory.mktemp("bodies"))


def test_accounting(case: Ingested) -> None:
    assert_reconciles(case.manifest)
    assert case.manifest["totals"]["rejected"] == 0
    assert case.manifest["totals"]["ingested"] == 9  # one record per file


def test_xai_reasoning_outside_completion_tokens(case: Ingested) -> None:
    r = case.by_id("x-1")
    # total 334 = prompt 12 + completion 2 + reasoning 320: xAI counts reasoning OUTSIDE completion,
    # so output = 2 + 320 = 322; cached 2 is inside prompt 12 -> 10 uncached.
    assert buckets(r) == (10, 2, None, None, None, 322, 320)
    assert r["provider"] == "xai"
    assert r["cost_reported_usd"] == pytest.approx(1641500 / 1e10)  # ticks of 1e-10 USD


def test_deepseek_cache_hit_is_inside_prompt(case: Ingested) -> None:
    r = case.by_id("ds-1")
    # hit 320 + miss 175 = prompt 495; reasoning 118 is inside completion 144.
    assert buckets(r) == (175, 320, None, None, None, 144, 118)
    assert r["provider"] == "deepseek" and r["response_reasoning"] == "ok"


def test_groq_identified_by_usage_keys(case: Ingested) -> None:
    r = case.by_id("chatcmpl-g1")
    assert r["provider"] == "groq" and r["model"] == "llama-3.3-70b-versatile"
    assert buckets(r) == (218, None, None, None, None, 15, None)
    assert r["finish_reason"] == "tool_calls" and r["response_tool_calls"][0]["name"] == "weather"


def test_gemini_thoughts_outside_candidates_and_tool_use_prompt(case: Ingested) -> None:
    r = case.by_id("gem-1")
    # prompt 1000 includes cached 800; toolUsePrompt 50 is extra input: 1000 + 50 - 800 = 250.
    # candidates 20 exclude thoughts 100: output 120. total 1170 = 1000 + 50 + 20 + 100.
    assert buckets(r) == (250, 800, None, None, None, 120, 100)
    assert r["response_text"] == "There are 3." and r["response_reasoning"] == "Plan."
    assert r["provider"] == "google" and r["model"] == "gemini-3-pro-preview"
    assert r["is_stream"] is False and r["source_format"] == "provider_body"


def test_gemini_interaction(case: Ingested) -> None:
    r = case.by_id("v1_abc")
    # total 1373 = input 22 + output 973 + tool_use 129 + thought 249; cached 10 inside input.
    assert buckets(r) == (22 + 129 - 10, 10, None, None, None, 973 + 249, 249)
    assert r["finish_reason"] == "tool_calls" and r["response_tool_calls"][0]["name"] == "getWeather"
    assert r["ts"].isoformat() == "2026-05-15T18:52:00+00:00"


def test_cohere_billed_units(case: Ingested) -> None:
    r = case.by_id("co-1")
    # billed 119/52 are what is paid; cached 992 > billed input, so it lies in Cohere's unbilled
    # template and is not a bucket (kept in usage_raw).
    assert buckets(r) == (119, None, None, None, None, 52, None)
    assert '"cached_tokens":992' in r["usage_raw"]
    assert r["provider"] == "cohere" and r["finish_reason"] == "tool_calls"
    assert [c["name"] for c in r["response_tool_calls"]] == ["weather"]


def test_bedrock_converse_duplicate_cache_aliases_counted_once(case: Ingested) -> None:
    (r,) = case.where(provider="bedrock")
    # cacheReadInputTokens and cacheReadInputTokenCount are the same 100 tokens, not 200.
    assert buckets(r) == (22, 100, None, None, 40, 57, None)
    assert r["latency_ms"] == 1864 and r["finish_reason"] == "stop"


def test_legacy_completion(case: Ingested) -> None:
    r = case.by_id("cmpl-1")
    assert r["endpoint"] == "completions" and r["finish_reason"] == "length"
    assert buckets(r) == (14, None, None, None, None, 16, None)


def test_error_body_is_an_error_row_with_missing_usage(case: Ingested) -> None:
    (r,) = case.where(source_format="api_error_body")
    assert r["finish_reason"] == "error" and r["error_type"] == "RESOURCE_EXHAUSTED"
    assert r["status_code"] == 429 and r["provider"] == "google"
    assert r["usage_missing"] is True and r["in_uncached"] is None


def test_cli_formats_lists_every_format() -> None:
    from click.testing import CliRunner

    from pipeline.cli import cli

    out = CliRunner().invoke(cli, ["formats"]).output
    for name in (
        "stream_chunks", "anthropic_batch_request", "anthropic_batch_result", "bedrock_invocation_log", "helicone",
        "langfuse_observation", "langsmith_run", "otlp_traces", "jaeger_traces", "claude_code", "codex_rollout", "har",
        "nock", "inspect_eval_log", "openai_responses", "gemini_generate_content", "gemini_interaction", "bedrock_converse",
        "cohere_chat_v2", "openai_completions",
    ):
        assert f"  {name} " in out, name
