"""A valid call is never quarantined for an optional part it can do without (issue #13, part 2):
every gateway/observability adapter merges what a record offers (pipeline/ingest/bodies/partial.py)
and notes in `metadata_json` what was partial. Planted by tests/planted_partial_bodies.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from format_cases import Ingested, assert_reconciles, ingest_case
from planted_partial_bodies import write_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Ingested, dict]:
    src = tmp_path_factory.mktemp("partial_src")
    truth = write_world(src)
    return ingest_case(Path(src), tmp_path_factory.mktemp("partial_wd")), truth


def partial_of(row: dict) -> dict:
    return (json.loads(row["metadata_json"]) if row["metadata_json"] else {}).get("partial", {})


def test_litellm_partial_rows_are_all_kept(world: tuple[Ingested, dict]) -> None:
    case, truth = world
    assert_reconciles(case.manifest)
    spend = truth["spend_logs"]
    rows = {r["request_id"]: r for r in case.rows if r["source_format"] == "litellm_spend_log"}
    keep = {k for k, t in spend.items() if t["keep"]}
    assert set(rows) == keep  # JSON 798 of 800 (+ the CSV rows): only the two with nothing recoverable are rejected
    rejected = sorted(r["detail"][:60] for r in case.rejects if "litellm_spend_logs" in r["source_file"])
    assert len(rejected) == 2 and all("not recognized" in d for d in rejected)
    partial = [k for k, t in spend.items() if t["kind"] == "model_and_tools_only"]
    assert len([k for k in partial if not spend[k].get("csv")]) == 94  # the 94 rows (JSON export)
    assert any(spend[k].get("csv") for k in partial)  # ... and the same shape in a CSV export
    for k in partial:
        r, t = rows[k], spend[k]
        assert r["messages"][-1]["content"] == t["user"] and r["system_text"] == "You are the order assistant."
        assert json.loads(r["tools_json"])[0]["name"] == "lookup_order"
        assert r["in_uncached"] + r["in_cache_read"] == t["prompt"] and r["in_cache_read"] == t["cached"]
        assert r["out_total"] == t["completion"]
        assert partial_of(r) == {"request_merged_from": ["proxy_server_request", "messages"], "response": "missing"}
    # Totals and cached tokens are no longer short by the partial rows.
    assert sum(r["in_uncached"] + r["in_cache_read"] for r in rows.values()) == sum(spend[k]["prompt"] for k in keep)
    assert sum(r["in_cache_read"] for r in rows.values()) == sum(spend[k]["cached"] for k in keep)
    for k, t in spend.items():
        if t["kind"] == "no_conversation":
            assert partial_of(rows[k]) == {"conversation": "missing", "response": "missing",
                                           "request_unrecognized": "model, tools"}
            assert rows[k]["messages"] is None or rows[k]["messages"] == []
        if t["kind"] == "full":
            assert partial_of(rows[k]) == {} and rows[k]["response_text"] == t["response"]


@pytest.mark.parametrize("rid", ["pl-1", "h-partial-1", "h-partial-2", "obs-partial", "ls-partial", "chatcmpl-w1", "chatcmpl-w2",
                                 "7c8efff798038103d269b633813fc60c:bbbb000000000001"])
def test_other_adapters_keep_partial_records(world: tuple[Ingested, dict], rid: str) -> None:
    case, truth = world
    t = truth["others"][rid]
    r = case.by_id(rid)
    user = r["messages"][-1]["content"] if r["messages"] else None
    assert user == t["user"], rid
    assert r["response_text"] == t["response"], rid
    if t["tools"] is not None:
        assert (r["tools_json"] is not None) is t["tools"], rid
    assert r["in_uncached"] + (r["in_cache_read"] or 0) == t["prompt"], rid
    notes = partial_of(r)
    assert bool(notes) is (t["user"] is None or t["response"] is None), rid  # what was partial is said
    if t["user"] is None:
        assert notes.get("conversation") == "missing" or "request_unrecognized" in notes, rid
    if t["response"] is None:
        assert notes.get("response") == "missing" or "response_unrecognized" in notes, rid


def test_no_other_adapter_rejects(world: tuple[Ingested, dict]) -> None:
    case, _ = world
    assert [r for r in case.rejects if "litellm_spend_logs" not in r["source_file"]] == []


def test_wrapper_with_nothing_is_rejected_and_a_failed_call_kept(tmp_path: Path) -> None:
    """The floor of the rule: a record with no body and no usage is rejected with its reason; a
    failed call that logged only its error is a call (it is counted, not quarantined)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "wrappers.jsonl").write_text(
        json.dumps({"request": None, "response": None}) + "\n"
        + json.dumps({"id": "e-1", "timestamp": "2026-07-14T09:12:03Z", "provider": "openai",
                      "endpoint": "/v1/chat/completions", "request": None, "response": None,
                      "error": {"status": 429, "type": "rate_limit_exceeded", "message": "slow down"}}) + "\n",
        encoding="utf-8")
    case = ingest_case(src, tmp_path / "wd")
    assert_reconciles(case.manifest)
    assert [r["reason"] for r in case.rejects] == ["unknown_body_format"]
    r = case.by_id("e-1")
    assert (r["finish_reason"], r["status_code"], r["error_type"]) == ("error", 429, "rate_limit_exceeded")
