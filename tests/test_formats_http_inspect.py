"""HTTP captures (tests/cases/http/: HAR 1.2, nock) and inspect eval logs (tests/cases/inspect/)."""

from __future__ import annotations

import json

import pytest
from format_cases import Ingested, assert_reconciles, buckets, ingest_case


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    return ingest_case("http", tmp_path_factory.mktemp("http"))


@pytest.fixture(scope="module")
def inspect_log(tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    return ingest_case("inspect", tmp_path_factory.mktemp("inspect"))


def test_har_container(http: Ingested) -> None:
    assert_reconciles(http.manifest)
    har = next(f for f in http.manifest["files"] if f["path"].endswith(".har"))
    assert (har["ingested"], har["rows_emitted"], har["items_skipped"]) == (1, 2, 1)
    (skip,) = [r for r in http.rejects if r["source_file"].endswith(".har")]
    assert skip["reason"] == "not_a_text_generation_call" and "images/generations" in skip["detail"]


def test_har_gzip_base64_chunks(http: Ingested) -> None:
    r = http.by_id("req_h1")  # request id from the x-request-id response header
    assert buckets(r) == (162, 2048, None, None, None, 18, None)
    assert (r["status_code"], r["latency_ms"], r["is_stream"], r["ttft_ms"]) == (200, 964, False, None)
    assert r["system_text"] == "You are SupportBot." and r["response_text"] == "It shipped today."
    assert r["ts"].isoformat() == "2026-07-14T09:12:03.101000+00:00" and r["source_line"] == 1


def test_har_sse_body(http: Ingested) -> None:
    r = http.by_id("req_h2")
    assert r["is_stream"] is True and r["response_text"] == "Sure, a joke."
    assert (r["in_uncached"], r["out_total"], r["ttft_ms"], r["latency_ms"]) == (17, 158, 480, 6025)


def test_nock_gzip_hex_chunks(http: Ingested) -> None:
    r = http.by_id("req_n1")
    assert buckets(r) == (22, 0, None, None, None, 3, None)
    assert r["ts"].isoformat() == "2025-07-11T07:02:37+00:00"  # the `date` response header
    assert r["latency_ms"] == 354  # openai-processing-ms: the only timing a nock file has


def test_nock_error_and_eventstream(http: Ingested) -> None:
    err = http.by_id("2737d2f5")
    assert (err["status_code"], err["finish_reason"], err["error_type"]) == (403, "error", "InvalidSignatureException")
    assert err["error_message"].startswith("Signature expired") and err["usage_missing"] is True
    cs = http.by_id("cs-1")  # AWS event-stream binary stored as hex
    assert (cs["endpoint"], cs["is_stream"], cs["response_text"]) == ("converse", True, "Hi! How are you?")
    assert (cs["in_uncached"], cs["out_total"], cs["latency_ms"]) == (8, 10, 765)


def test_nock_bedrock_usage_from_headers(http: Ingested) -> None:
    r = http.by_id("ll-1")  # a Llama body without counts; the x-amzn-bedrock-* headers have them
    assert buckets(r) == (9, None, None, None, None, 3, None)
    assert (r["provider"], r["model"], r["response_text"]) == ("bedrock", "meta.llama2-13b-chat-v1", "Hi!")


def test_inspect_model_events(inspect_log: Ingested) -> None:
    assert_reconciles(inspect_log.manifest)
    assert inspect_log.manifest["totals"]["rows_emitted"] == 2
    raw = inspect_log.by_id("chatcmpl-i1")
    # raw OpenAI response: prompt 1568 includes cached 1024.
    assert buckets(raw) == (544, 1024, None, None, None, 17, None)
    assert raw["system_text"].startswith("You are a careful support agent.")  # attachment:// resolved
    assert raw["latency_ms"] == 500 and raw["session_id"] == "RUN1:1:1"
    assert raw["ts"].isoformat() == "2026-07-14T13:00:01+00:00"
    (fallback,) = inspect_log.where(model="claude-sonnet-4-6")
    # no `call`: inspect's own usage; total 1055 = 100 + 5 + 900 + 50 says input excludes the cache.
    assert buckets(fallback) == (100, 900, None, None, 50, 5, None)
    assert fallback["response_text"] == "GRADE: C" and fallback["system_text"] == "Grade the answer."
    assert json.loads(fallback["metadata_json"])["model_event"] == 2
