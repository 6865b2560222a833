"""Claude Code transcripts and Codex CLI rollouts (tests/cases/claude_code/, tests/cases/codex/)."""

from __future__ import annotations

import json

import pytest
from format_cases import Ingested, assert_reconciles, buckets, ingest_case


@pytest.fixture(scope="module")
def claude(tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    return ingest_case("claude_code", tmp_path_factory.mktemp("claude_code"))


@pytest.fixture(scope="module")
def codex(tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    return ingest_case("codex", tmp_path_factory.mktemp("codex"))


def test_claude_code_one_row_per_api_message(claude: Ingested) -> None:
    assert_reconciles(claude.manifest)
    t = claude.manifest["totals"]
    assert (t["lines_read"], t["ingested"], t["skipped"]) == (9, 7, 2)  # summary + <synthetic> skipped
    assert sorted(r["reason"] for r in claude.rejects) == ["not_an_api_call", "synthetic_message"]
    assert [r["request_id"] for r in claude.rows] == ["req_011CQ", "req_011CR", "req_011CS"]


def test_claude_code_split_message_not_double_counted(claude: Ingested) -> None:
    r = claude.by_id("req_011CQ")
    # Two lines share msg_01AB + req_011CQ: usage once, output from the final line (96, not 1 + 96).
    assert buckets(r) == (3, 24512, 0, 1840, None, 96, None)
    assert r["response_text"] == "I'll read the file first." and r["response_tool_calls"][0]["name"] == "Read"
    assert r["finish_reason"] == "tool_calls" and r["response_id"] == "msg_01AB"
    assert r["session_id"] == "3fa2f6ab-5bc5-4c42-96cf-f0e78d71706d" and r["ts"].isoformat() == "2026-07-14T09:12:06.913000+00:00"


def test_claude_code_prompt_rebuilt_from_parent_chain(claude: Ingested) -> None:
    r = claude.by_id("req_011CR")
    assert r["parent_id"] == "req_011CQ"
    assert [m["role"] for m in r["messages"]] == ["user", "assistant", "tool"]
    assert r["messages"][1]["content"] == "I'll read the file first."  # both lines of msg_01AB in one message
    assert r["messages"][1]["tool_calls"][0]["id"] == "toolu_9" and r["messages"][2]["tool_call_id"] == "toolu_9"
    assert buckets(r) == (5, 26352, 300, 0, None, 40, None)


def test_claude_code_sidechain_kept_and_flagged(claude: Ingested) -> None:
    r = claude.by_id("req_011CS")
    meta = json.loads(r["metadata_json"])
    assert meta["is_sidechain"] is True and r["parent_id"] is None
    assert [m["content"] for m in r["messages"]] == ["Find all callers of refund()."]
    assert r["model"] == "claude-haiku-4-5"


def test_codex_cumulative_counts_differenced(codex: Ingested) -> None:
    assert_reconciles(codex.manifest)
    assert codex.manifest["totals"]["ingested"] == 13 and len(codex.rows) == 2
    first, second = codex.by_id("019f95ae-7c2d#1"), codex.by_id("019f95ae-7c2d#2")
    # call 1: 10000 in (8000 cached) -> 2000 uncached; 300 out incl. 100 reasoning.
    assert buckets(first) == (2000, 8000, None, None, None, 300, 100)
    # the repeated token_count (same total) is not a call; call 2 = 21000-10000 in, 18000-8000 cached.
    assert buckets(second) == (1000, 10000, None, None, None, 150, 30)
    assert first["model"] == "gpt-5.6-codex" and first["system_text"] == "You are Codex.\nSandbox: workspace-write."
    assert first["finish_reason"] == "tool_calls" and first["response_tool_calls"][0]["name"] == "shell"
    assert second["parent_id"] == first["request_id"] and second["response_text"] == "All 3 tests pass."
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "tool"]


def test_codex_non_iso_timestamp_does_not_crash(codex: Ingested) -> None:
    assert codex.by_id("019f95ae-7c2d#2")["ts"] is None  # "[trimmed for fixture]"
    assert codex.by_id("019f95ae-7c2d#1")["ts"].isoformat() == "2026-07-14T09:20:09.500000+00:00"
