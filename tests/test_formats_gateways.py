"""Gateway and observability exports (tests/cases/gateways/): Helicone, Langfuse, LangSmith —
records from formats.md §g/§h1/§h2 plus their traps."""

from __future__ import annotations

import json

import pytest
from format_cases import Ingested, assert_reconciles, buckets, ingest_case


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    return ingest_case("gateways", tmp_path_factory.mktemp("gateways"))


def test_accounting_and_skips(case: Ingested) -> None:
    assert_reconciles(case.manifest)
    assert case.manifest["by_format"] == {"helicone": 2, "langfuse_observation": 2, "langsmith_run": 2}
    skipped = sorted((r["source_file"].rsplit("/", 1)[1], r["detail"]) for r in case.rejects)
    assert skipped == [("langfuse_observations.jsonl", "Langfuse SPAN observation"), ("langsmith_runs.jsonl", "LangSmith `chain` run")]


def test_helicone_openai(case: Ingested) -> None:
    r = case.by_id("7b1e0c52-3a7d-4c0b-9a51-2f3e1d0c9a88")
    # The body has no usage, so the columns count: prompt 2210 includes the 2048 cache reads.
    assert buckets(r) == (162, 2048, None, None, 0, 18, None)
    assert (r["provider"], r["user_id"], r["session_id"]) == ("openai", "u_7f3a", "conv_77")
    assert (r["latency_ms"], r["ttft_ms"], r["cost_reported_usd"]) == (964, 402, 0.00025)
    assert r["feedback_score"] == -1.0 and json.loads(r["feedback_json"])["scores"] == {"resolution": 0}
    assert r["response_text"] == "It shipped today." and r["messages"][0]["content"] == "Where is order #48213?"
    assert r["ts"].isoformat() == "2026-07-14T09:12:03.101000+00:00"  # no zone in the export: UTC


def test_helicone_anthropic_without_bodies(case: Ingested) -> None:
    r = case.by_id("h-anthropic-1")
    # Anthropic's input count excludes cache reads: 312 stays uncached (not 312 - 6144).
    assert buckets(r) == (312, 6144, None, None, 0, 188, None)
    assert "bodies_unavailable" in json.loads(r["metadata_json"])
    assert r["latency_ms"] == 3000  # from the two timestamps


def test_langfuse_generation(case: Ingested) -> None:
    r = case.by_id("obs_3f2a")
    # usage_details are additive: total 12690 = 576 + 11904 + 0 + 210.
    assert buckets(r) == (576, 11904, None, None, 0, 210, None)
    assert (r["latency_ms"], r["ttft_ms"]) == (pytest.approx(2843), pytest.approx(721))  # from timestamps
    assert (r["model"], r["provider"], r["session_id"], r["user_id"]) == ("claude-sonnet-4-6", "anthropic", "conv_77", "cust_4411")
    assert r["system_text"] == "You are ..." and r["messages"][0]["content"] == "Cancel my plan"
    assert r["response_text"] == "I can help with that ..." and r["cost_reported_usd"] == 0.0085
    assert json.loads(r["metadata_json"])["prompt_name"] == "support-answer"


def test_langfuse_input_already_including_cache_is_not_double_counted(case: Ingested) -> None:
    r = case.by_id("obs_double")
    # langfuse#10592: input 12480 already contains the 11904 cached (total 12690 = 12480 + 210).
    assert buckets(r) == (576, 11904, None, None, None, 210, None)


def test_langsmith_openai_run(case: Ingested) -> None:
    r = case.by_id("0d6f-01")
    assert buckets(r) == (1830 - 1664, 1664, None, None, None, 14, None)
    assert r["session_id"] == "conv_77"  # thread_id, not LangSmith's project `session_id`
    assert (r["model"], r["provider"], r["user_id"]) == ("gpt-4.1-mini", "openai", "u_7f3a")
    assert (r["latency_ms"], r["ttft_ms"]) == (pytest.approx(870), pytest.approx(390))
    assert r["response_text"] == "Damaged items are refunded within 5 days."


def test_langsmith_langchain_serialized_run(case: Ingested) -> None:
    r = case.by_id("lc-1")
    # usage_metadata input 2100 is the sum of all input types: 2100 - 2000 read - 50 written = 50.
    assert buckets(r) == (50, 2000, None, None, 50, 3, None)
    assert r["system_text"] == "Be brief." and [m["role"] for m in r["messages"]] == ["user"]
    assert r["response_text"] == "Paris." and r["finish_reason"] == "stop"
