"""Anthropic Message Batches (tests/cases/anthropic_batch/) and Bedrock model-invocation logs
(tests/cases/bedrock_log/)."""

from __future__ import annotations

import json

import pytest
from format_cases import Ingested, assert_reconciles, buckets, ingest_case


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    return ingest_case("anthropic_batch", tmp_path_factory.mktemp("anthropic_batch"))


@pytest.fixture(scope="module")
def bedrock(tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    return ingest_case("bedrock_log", tmp_path_factory.mktemp("bedrock_log"))


def test_batch_joined_by_custom_id_out_of_order(batch: Ingested) -> None:
    assert_reconciles(batch.manifest)
    assert batch.manifest["by_format"] == {"anthropic_batch_request": 4, "anthropic_batch_result": 3}
    assert sorted(r["request_id"] for r in batch.rows) == ["pr-812-review", "pr-813-review", "pr-814-review", "pr-815-review"]
    ok = batch.by_id("pr-812-review")
    # 6144 cache-creation tokens without a 5m/1h split: the TTL is unknown, not assumed.
    assert buckets(ok) == (40, 0, None, None, 6144, 3, None)
    assert ok["is_batch"] is True and ok["service_tier"] == "batch"
    assert ok["response_text"] == "LGTM" and ok["messages"][0]["content"] == "Review PR 812."
    assert [b["segment"] for b in ok["cache_breakpoints"]] == ["system"]


def test_batch_errors_and_unanswered(batch: Ingested) -> None:
    err = batch.by_id("pr-813-review")
    assert (err["finish_reason"], err["error_type"], err["error_message"]) == ("error", "overloaded_error", "Overloaded")
    assert err["usage_missing"] is True
    assert batch.by_id("pr-814-review")["error_type"] == "batch_expired"
    pending = batch.by_id("pr-815-review")  # request whose result was not exported
    assert pending["finish_reason"] is None and pending["response_text"] is None and pending["usage_missing"] is True


def test_bedrock_converse_log(bedrock: Ingested) -> None:
    assert_reconciles(bedrock.manifest)
    r = bedrock.by_id("5c1d2e3f-7a2b-4c19-9d0e-1f2a3b4c5d6e")
    # inputTokenCount 57 EXCLUDES the 3968 cache reads (totalTokens 4099 = 57 + 3968 + 74).
    assert buckets(r) == (57, 3968, None, None, 0, 74, None)
    assert (r["provider"], r["endpoint"], r["model"]) == ("bedrock", "converse", "eu.anthropic.claude-sonnet-4-6-v1:0")
    assert r["user_id"] == "arn:aws:sts::111122223333:assumed-role/support-bot/lambda-7"
    assert r["system_text"] == "You answer HR policy questions..."
    assert [(b["segment"], b["index"]) for b in r["cache_breakpoints"]] == [("system", 1)]
    assert r["latency_ms"] == 1830 and r["ts"].isoformat() == "2026-07-14T09:12:03+00:00"
    assert json.loads(r["metadata_json"])["inference_region"] == "eu-central-1"


def test_bedrock_offloaded_bodies_still_give_a_row(bedrock: Ingested) -> None:
    r = bedrock.by_id("big-1")
    assert buckets(r) == (30000, 0, None, None, 2048, 900, None)
    meta = json.loads(r["metadata_json"])
    assert meta["request_body_unavailable"].startswith("offloaded to s3://")
    assert meta["response_body_unavailable"].endswith("big-1_output.json.gz")
    assert r["response_text"] is None and r["messages"] is None


def test_bedrock_stream_operation_event_array(bedrock: Ingested) -> None:
    r = bedrock.by_id("stream-1")
    assert r["is_stream"] is True and r["response_text"] == "Hello!"
    assert (r["in_uncached"], r["out_total"], r["finish_reason"], r["latency_ms"]) == (8, 10, "length", 765)
