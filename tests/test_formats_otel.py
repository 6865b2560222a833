"""OpenTelemetry GenAI spans (tests/cases/otel/): OTLP/JSON and Jaeger exports, current, older and
OpenInference attribute names; non-LLM spans are skipped items, agent spans never counted."""

from __future__ import annotations

import json

import pytest
from format_cases import Ingested, assert_reconciles, buckets, ingest_case

TRACE = "5b8efff798038103d269b633813fc60c"


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    return ingest_case("otel", tmp_path_factory.mktemp("otel"))


def test_containers_and_skipped_spans(case: Ingested) -> None:
    assert_reconciles(case.manifest)
    t = case.manifest["totals"]
    assert (t["ingested"], t["rows_emitted"], t["items_skipped"], t["rejected"]) == (2, 4, 4, 0)
    details = sorted(r["detail"] for r in case.rejects if r["kind"] == "skipped")
    assert details == [
        "span aaaa000000000001 `invoke_agent support` (operation invoke_agent)",  # its usage restates the chat span's
        "span aaaa000000000002 `POST`",
        "span cccc000000000002 `retriever` (operation RETRIEVER)",
        "span d1 `execute_tool pyats_list_devices` (operation execute_tool)",
    ]


def test_current_semconv_span(case: Ingested) -> None:
    r = case.by_id(f"{TRACE}:eee19b7ec3c1b174")
    # gen_ai.usage.input_tokens 2210 includes cache_read 2048.
    assert buckets(r) == (162, 2048, None, None, None, 18, None)
    assert (r["provider"], r["model"], r["model_resolved"], r["response_id"]) == ("openai", "gpt-4.1-mini", "gpt-4.1-mini-2025-04-14", "chatcmpl-9x2a")
    assert r["system_text"] == "You are SupportBot." and r["messages"][0]["content"] == "Where is order #48213?"
    assert r["response_text"] == "It shipped today." and r["finish_reason"] == "stop"
    assert r["latency_ms"] == pytest.approx(964) and r["session_id"] == "conv_77"
    assert json.loads(r["metadata_json"])["service_name"] == "support-api"


def test_older_attribute_names_and_error_status(case: Ingested) -> None:
    (r,) = case.where(provider="anthropic", source_format="otlp_traces")
    # prompt_tokens 1300 with 1000 read + 200 written underscore-style counts inside it.
    assert buckets(r) == (100, 1000, None, None, 200, 40, None)
    assert r["system_text"] == "Be brief." and r["messages"][0]["content"] == "Hi" and r["response_text"] == "Hello!"
    assert (r["finish_reason"], r["error_message"]) == ("error", "late error")


def test_openinference_span(case: Ingested) -> None:
    (r,) = case.where(session_id="s-oi")
    assert buckets(r) == (400, 600, None, None, None, 50, 10)
    assert r["model"] == "gpt-4o-mini" and r["provider"] == "openai"
    call = r["response_tool_calls"][0]
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"city": "Paris"}


def test_jaeger_span_with_unknown_model(case: Ingested) -> None:
    (r,) = case.where(source_format="jaeger_traces")
    assert r["request_id"] == "17bb78ce81067be5b6f480c41894f25a:c1b46178d7677df1"
    # gen_ai.request.model is "unknown" and the provider a framework: both come from ls_model_name.
    assert (r["model"], r["provider"]) == ("anthropic/claude-opus-4-5-20251101", "anthropic")
    assert buckets(r) == (805, 0, None, None, None, 77, None)
    assert r["finish_reason"] == "tool_calls" and r["response_tool_calls"][0]["name"] == "query_detector"
    assert r["messages"][0]["content"] == "¿Hay errores en R1?"
    assert r["latency_ms"] == pytest.approx(8314.813) and r["ts"].isoformat() == "2026-06-21T14:56:01.943843+00:00"
