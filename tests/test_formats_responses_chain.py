"""OpenAI Responses chains (tests/cases/responses/): turns sent with `previous_response_id` get
their full prompt rebuilt from the earlier turns, even when those are read later."""

from __future__ import annotations

import json

import pytest
from format_cases import Ingested, assert_reconciles, buckets, ingest_case


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    return ingest_case("responses", tmp_path_factory.mktemp("responses"))


def test_first_turn(case: Ingested) -> None:
    assert_reconciles(case.manifest)
    r = case.by_id("t1")
    # input 5120 includes 4864 read and 128 written (GPT-5.6 cache_write_tokens): 5120-4864-128 = 128.
    assert buckets(r) == (128, 4864, None, None, 128, 212, 64)
    assert r["system_text"] == "You summarise supplier contracts." and r["response_reasoning"] == "Reading annex A."
    assert r["latency_ms"] == 2500 and r["parent_id"] is None


def test_chained_turn_gets_full_context(case: Ingested) -> None:
    r = case.by_id("t2")
    assert r["parent_id"] == "resp_a1"
    assert [(m["role"], m["content"]) for m in r["messages"]] == [
        ("user", "Summarise annex A."),
        ("assistant", "Annex A: 24 months."),
        ("user", "Now do annex B."),
    ]
    meta = json.loads(r["metadata_json"])
    assert meta["chain_depth"] == 1 and "context_incomplete" not in meta
    assert buckets(r) == (152, 5248, None, None, None, 20, 0)
    assert r["finish_reason"] == "tool_calls" and r["response_tool_calls"][0]["id"] == "call_9"


def test_missing_ancestor_is_flagged(case: Ingested) -> None:
    r = case.by_id("t3")
    meta = json.loads(r["metadata_json"])
    assert meta["context_incomplete"] is True and meta["missing_response_id"] == "resp_gone"
    assert [m["content"] for m in r["messages"]] == ["And annex C?"]
    assert r["finish_reason"] == "length"  # incomplete: max_output_tokens
