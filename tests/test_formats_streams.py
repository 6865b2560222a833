"""Streamed responses stored one chunk per line (tests/cases/streams/): one row per stream, usage
from wherever the provider puts it, missing (not zero) when the stream carried none."""

from __future__ import annotations

import json

import pytest
from format_cases import Ingested, assert_reconciles, buckets, ingest_case


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    return ingest_case("streams", tmp_path_factory.mktemp("streams"))


def test_one_row_per_stream(case: Ingested) -> None:
    assert_reconciles(case.manifest)
    t = case.manifest["totals"]
    assert (t["lines_read"], t["ingested"], t["rejected"]) == (37, 37, 0)  # every chunk merged into a call
    assert len(case.rows) == 8
    assert all(r["is_stream"] for r in case.rows)


def test_openai_usage_only_in_last_chunk(case: Ingested) -> None:
    r = case.by_id("chatcmpl-9x2b")
    # final chunk: prompt 2241 incl. cached 2176 -> 65 uncached; completion 6.
    assert buckets(r) == (65, 2176, None, None, None, 6, None)
    assert r["response_text"] == "Your order shipped today." and r["finish_reason"] == "stop"
    assert r["ts"].isoformat() == "2026-07-14T09:12:10+00:00"  # chunk `created` 1784020330
    assert r["source_line"] == 1


def test_openai_stream_without_usage_is_missing_not_zero(case: Ingested) -> None:
    a, b = case.by_id("chatcmpl-A"), case.by_id("chatcmpl-B")  # interleaved in one file
    for r in (a, b):
        assert r["usage_missing"] is True
        assert buckets(r) == (None,) * 7
    assert a["response_text"] == "Hello"
    call = b["response_tool_calls"][0]
    assert (call["id"], call["name"]) == ("call_1", "lookup_order")
    assert json.loads(call["arguments"]) == {"order_id": "48213"}  # fragments joined by tool index


def test_anthropic_events(case: Ingested) -> None:
    r = case.by_id("msg_s1")
    # input side from message_start (12 uncached, 1000 read, 500 written 5m); output from the
    # final message_delta (30), not message_start's placeholder 1 and not 1 + 30.
    assert buckets(r) == (12, 1000, 500, 0, None, 30, None)
    assert r["response_text"] == "Let me check." and r["finish_reason"] == "tool_calls"
    assert json.loads(r["response_tool_calls"][0]["arguments"]) == {"path": "src/refund.py"}


def test_cut_anthropic_stream_keeps_input_but_output_unknown(case: Ingested) -> None:
    r = case.by_id("msg_s2")
    assert r["in_uncached"] == 7 and r["out_total"] is None
    assert r["response_text"] == "Partial" and r["finish_reason"] is None


def test_responses_events_use_the_terminal_response(case: Ingested) -> None:
    r = case.by_id("resp_s1")
    assert buckets(r) == (19681 - 3712, 3712, None, None, None, 3773, 3136)
    assert r["endpoint"] == "responses" and r["response_text"] == "Short answer."


def test_bedrock_converse_stream(case: Ingested) -> None:
    (r,) = case.where(provider="bedrock")
    assert buckets(r) == (20, 100, None, None, 50, 10, None)  # Converse input excludes cache counts
    assert r["latency_ms"] == 900 and r["finish_reason"] == "tool_calls"
    assert r["response_text"] == "Checking"
    assert json.loads(r["response_tool_calls"][0]["arguments"]) == {"command": "ls"}


def test_gemini_chunks_cumulative_usage(case: Ingested) -> None:
    r = case.by_id("g-s1")
    # usageMetadata is cumulative: the last chunk's counts, not the sum of both chunks.
    assert buckets(r) == (200, 800, None, None, None, 120, 100)
    assert r["response_text"] == "There are 3 r's."
