"""Export shapes read from real recordings (tests/cases/exports/, provenance in its README.md):
Langfuse trace downloads, LangSmith runs/batch payloads, raw SSE captures, VCR cassettes and
inspect_ai `.eval` logs. Every expected token figure is computed here from the file's OWN usage
fields, with the standard library and PyYAML only (no code shared with the ingest), then compared
with the stored rows bucket for bucket."""

from __future__ import annotations

import gzip
import json
import os
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from format_cases import CASES, Ingested, assert_reconciles, buckets, ingest_case

EXPORTS = CASES / "exports"


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    return ingest_case("exports", tmp_path_factory.mktemp("exports"))


def rows_of(case: Ingested, name: str) -> list[dict[str, Any]]:
    return sorted((r for r in case.rows if Path(r["source_file"]).name == name), key=lambda r: (r["source_line"], str(r["ts"])))


def test_every_file_is_read_and_accounted(case: Ingested) -> None:
    assert_reconciles(case.manifest)
    files = {Path(f["path"]).name: f for f in case.manifest["files"]}
    assert len(files) == len([p for p in EXPORTS.rglob("*") if p.is_file() and p.name != "README.md"])
    assert all(f["rejected"] == 0 and f["status"] == "ingested" for f in files.values()), files
    assert case.manifest["paths_not_read"] == [{"path": str(EXPORTS / "README.md"), "reason": "not_a_log_file_extension"}]


# --- Langfuse trace downloads -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["llamaindex-2025-06-05.json", "autogen-2025-06-06.json",
                                  "google-vertex-tools-langchain-2025-09-19.json"])
def test_langfuse_trace_generations(case: Ingested, name: str) -> None:
    doc = json.loads((EXPORTS / "langfuse" / name).read_text())
    generations = [o for o in doc["observations"] if o["type"] == "GENERATION"]
    rows = {r["request_id"]: r for r in rows_of(case, name)}
    assert sorted(rows) == sorted(o["id"] for o in generations)
    for obs in generations:
        row = rows[obs["id"]]
        details = obs.get("usageDetails") or {"input": obs["inputUsage"], "output": obs["outputUsage"]}
        assert (row["in_uncached"], row["out_total"]) == (details["input"], details["output"])
        assert row["in_cache_read"] == details.get("prompt_details.cache_read")
        assert row["model"] == obs["model"] and row["source_format"] == "langfuse_trace"
        assert row["ts"] == datetime.fromisoformat(obs["startTime"].replace("Z", "+00:00"))
    skipped = [r for r in case.rejects if Path(r["source_file"]).name == name]
    assert len(skipped) == len(doc["observations"]) - len(generations)


# --- LangSmith runs/batch payloads --------------------------------------------------------------


@pytest.mark.parametrize("name", ["langsmith_py_wrap_openai_.json", "langsmith_py_wrap_openai_reasoning.json",
                                  "langsmith_py_wrap_openai_stream_no_usage.json"])
def test_langsmith_batch_runs(case: Ingested, name: str) -> None:
    doc = json.loads((EXPORTS / "langsmith" / name).read_text())
    (post,), (patch,) = doc["post"], doc["patch"]
    (row,) = rows_of(case, name)
    assert row["request_id"] == post["id"] and row["source_format"] == "langsmith_batch"
    assert row["response_text"] == patch["outputs"]["choices"][0]["message"]["content"]
    assert row["messages"][-1]["content"] == post["inputs"]["messages"][-1]["content"]
    assert row["model"] == post["extra"]["metadata"]["ls_model_name"]
    um = patch["outputs"]["usage_metadata"]
    if um is None:  # a stream without include_usage: usage is missing, never zero
        assert row["usage_missing"] and buckets(row) == (None,) * 7
        return
    read = um["input_token_details"].get("cache_read", 0)
    assert buckets(row) == (um["input_tokens"] - read, read, None, None, None, um["output_tokens"],
                            um["output_token_details"]["reasoning"])


# --- raw SSE captures ---------------------------------------------------------------------------


def sse_payloads(path: Path) -> list[dict]:
    return [json.loads(line[5:]) for line in path.read_text().splitlines()
            if line.startswith("data:") and line[5:].strip() != "[DONE]"]


@pytest.mark.parametrize("name", ["openai_stream.txt", "openai_tool_use_stream.sse"])
def test_openai_sse_capture(case: Ingested, name: str) -> None:
    chunks = sse_payloads(EXPORTS / "sse" / name)
    usage = next(c["usage"] for c in reversed(chunks) if c.get("usage"))
    (row,) = rows_of(case, name)
    cached = usage["prompt_tokens_details"]["cached_tokens"]
    assert buckets(row) == (usage["prompt_tokens"] - cached, cached, None, None, None, usage["completion_tokens"],
                            usage["completion_tokens_details"]["reasoning_tokens"])
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert (row["response_text"] or "") == text and row["is_stream"] and row["request_id"] == chunks[0]["id"]
    finish = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert row["finish_reason_raw"] == finish[-1]


@pytest.mark.parametrize("name", ["anthropic_stream.txt", "anthropic_tool_use_stream_real.jsonl"])
def test_anthropic_sse_capture(case: Ingested, name: str) -> None:
    events = sse_payloads(EXPORTS / "sse" / name)
    start = next(e for e in events if e["type"] == "message_start")["message"]
    final = [e for e in events if e["type"] == "message_delta"][-1]
    (row,) = rows_of(case, name)
    u = start["usage"]
    assert buckets(row) == (u["input_tokens"], u["cache_read_input_tokens"], u["cache_creation"]["ephemeral_5m_input_tokens"],
                            u["cache_creation"]["ephemeral_1h_input_tokens"], None, final["usage"]["output_tokens"], None)
    assert row["request_id"] == start["id"] and row["model"] == start["model"]
    assert row["finish_reason_raw"] == final["delta"]["stop_reason"]


def test_gemini_json_array_capture(case: Ingested) -> None:
    (chunk,) = json.loads((EXPORTS / "sse" / "googleai_stream.txt").read_text())
    (row,) = rows_of(case, "googleai_stream.txt")
    u = chunk["usageMetadata"]
    # Gemini reports thoughts apart from candidates; both are billed output.
    assert buckets(row) == (u["promptTokenCount"], None, None, None, None,
                            u["candidatesTokenCount"] + u["thoughtsTokenCount"], u["thoughtsTokenCount"])
    assert row["response_text"] == chunk["candidates"][0]["content"]["parts"][0]["text"]


# --- VCR / pytest-recording cassettes -----------------------------------------------------------


def cassette(name: str) -> list[dict]:
    return yaml.safe_load((EXPORTS / "vcr" / name).read_text())["interactions"]


def response_json(item: dict) -> Any:
    body = item["response"]["body"]["string"]
    if isinstance(body, bytes):
        body = gzip.decompress(body)
    return json.loads(body)


def test_vcr_gzip_binary_bodies_and_skipped_embeddings(case: Ingested) -> None:
    name = "7dc87e56-553e-4b4d-8caf-161d5e8d1f8a.yaml"
    chat, embeddings = cassette(name)
    body = response_json(chat)
    (row,) = rows_of(case, name)
    u = body["usage"]
    assert buckets(row) == (u["prompt_tokens"], None, None, None, None, u["completion_tokens"], None)
    assert row["response_text"] == body["choices"][0]["message"]["content"] and row["status_code"] == 200
    assert "embeddings" in embeddings["request"]["uri"]
    assert [r["reason"] for r in case.rejects if Path(r["source_file"]).name == name] == ["not_a_text_generation_call"]


def test_vcr_anthropic_messages(case: Ingested) -> None:
    name = "test_anthropic_with_raw_response_test_messages_with_raw_response_sync.yaml"
    rows = rows_of(case, name)
    bodies = [response_json(i) for i in cassette(name)]
    assert len(rows) == len(bodies) == 2
    for row, body in zip(rows, bodies, strict=True):
        u = body["usage"]
        assert buckets(row)[:3] + buckets(row)[5:6] == (u["input_tokens"], u["cache_read_input_tokens"],
                                                        u["cache_creation"]["ephemeral_5m_input_tokens"], u["output_tokens"])
        assert row["model_resolved"] == body["model"] and row["provider"] == "anthropic"


def test_vcr_gemini_sse_stream_bodies(case: Ingested) -> None:
    name = "test_gemini_test_generate_content_stream_sync.yaml"
    rows = rows_of(case, name)
    items = cassette(name)
    assert len(rows) == len(items)
    for row, item in zip(rows, items, strict=True):
        chunks = [json.loads(x[5:]) for x in item["response"]["body"]["string"].splitlines() if x.startswith("data:")]
        u = chunks[-1]["usageMetadata"]
        thoughts = u.get("thoughtsTokenCount", 0)
        assert buckets(row) == (u["promptTokenCount"], None, None, None, None, u.get("candidatesTokenCount", 0) + thoughts,
                                thoughts or None)
        assert row["is_stream"] and row["provider"] == "google"


def test_vcr_openai_stream_without_usage(case: Ingested) -> None:
    name = "test_openai_test_tool_call_chunking.yaml"
    (row,) = rows_of(case, name)
    assert "usage" not in cassette(name)[0]["response"]["body"]["string"]
    assert row["usage_missing"] and row["finish_reason"] == "tool_calls" and row["response_tool_calls"]


# --- inspect_ai .eval logs -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["2024-11-05T13-32-37-05-00_input-task_hxs4q9azL3ySGkjJirypKZ.eval", "log_streaming.eval"])
def test_inspect_eval_zip(case: Ingested, name: str) -> None:
    with zipfile.ZipFile(EXPORTS / "inspect" / name) as z:
        events = [e for n in z.namelist() if n.startswith("samples/")
                  for e in json.loads(z.read(n))["events"] if e["event"] == "model"]
    rows = rows_of(case, name)
    expected = sorted((datetime.fromisoformat(e["timestamp"]), e["output"]["usage"]["input_tokens"],
                       e["output"]["usage"]["output_tokens"]) for e in events)
    got = sorted((r["ts"], r["in_uncached"] + (r["in_cache_read"] or 0), r["out_total"]) for r in rows)
    assert got == expected and len(rows) == len(events)


def test_reingesting_every_new_shape_is_idempotent(tmp_path: Path) -> None:
    """Files re-read (touched, or copied elsewhere under the same names) add nothing: every row is
    recognized as already present, for every shape, including the run-wide LangSmith join."""
    import shutil

    logs = tmp_path / "logs"
    shutil.copytree(EXPORTS, logs)
    shutil.copytree(CASES / "exports_edge", logs / "edge")
    first = ingest_case(logs, tmp_path / "out")
    for p in logs.rglob("*"):
        if p.is_file():
            os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 1_000_000_000))
    second = ingest_case(logs, tmp_path / "out")
    assert second.manifest["totals"]["files_read"] == first.manifest["totals"]["files_read"]
    assert second.manifest["totals"]["rows_written"] == 0
    assert second.manifest["totals"]["rows_duplicate"] == first.manifest["totals"]["rows_written"] == 25 + 10
    assert len(second.rows) == len(first.rows)
