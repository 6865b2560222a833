"""The real-log corpus (../shared/real_logs, 254 files from public repositories) ingests whole.

Expected counts are constants taken from ../shared/real_logs/PROVENANCE.md (its per-folder summary
table, per-file tables and per-source notes), not from the tool's output. Where PROVENANCE gives
no number (rows after de-duplication, differenced Codex usage), the test derives it with a small
independent scan of the raw files and checks the tool against that. Skipped cleanly when the
corpus is absent.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from format_cases import Ingested, assert_reconciles, ingest_case

REAL_LOGS = Path(__file__).resolve().parent.parent.parent / "shared" / "real_logs"

# PROVENANCE.md, "Summary per format folder": files and records per folder (records in the
# folder's own unit: single objects, JSONL lines, HAR entries, nock array items, model events,
# Jaeger spans).
FILES = {
    "anthropic_messages": 27, "bedrock_converse": 11, "claude_code": 10, "codex_cli_rollout": 4, "cohere_chat": 6,
    "gemini_generate_content": 15, "http_recordings_har": 39, "http_recordings_nock": 60, "inspect_eval_log": 4,
    "openai_batch": 5, "openai_chat": 22, "openai_responses": 42, "otel_genai_jaeger": 1, "stream_chunks": 8,
}
RECORDS = {
    "anthropic_messages": 27, "bedrock_converse": 11, "claude_code": 695, "codex_cli_rollout": 617, "cohere_chat": 6,
    "gemini_generate_content": 15, "http_recordings_har": 40, "http_recordings_nock": 70, "inspect_eval_log": 16,
    "openai_batch": 149, "openai_chat": 22, "openai_responses": 42, "otel_genai_jaeger": 129, "stream_chunks": 862,
}
# PROVENANCE per-file tables: HAR entries that are not text generation — the image-generation
# tests ("should-calculate-correct-tokens-for-different-quality-levels" has 2 entries,
# "should-set-attributes-in-span-for-image-generation" 1) and the Cohere "Rerank" test (1).
HAR_NOT_GENERATION = 4
HAR_FILES_WITHOUT_LLM_CALLS = 3
# PROVENANCE: the 7 claude-reliability sessions each start with a `queue-operation` line; the
# claude-code-viewer fe5e1c67 session has a `summary` line. Neither is an API call.
CLAUDE_CODE_NON_CALL_LINES = 7 + 1
# PROVENANCE: "4 files are API error bodies, not completions" (2 Responses, 1 chat, 1 Google).
ERROR_BODIES = {"openai_responses": 2, "openai_chat": 1, "gemini_generate_content": 1}
# PROVENANCE: "7 entries are real HTTP 403 'Signature expired' Bedrock errors".
NOCK_403 = 7
# PROVENANCE inspect notes: "`stats.model_usage` aggregates usage incl. input_tokens_cache_read
# (9,088 cached tokens in the browser log)".
INSPECT_BROWSER_CACHED = 9088
# PROVENANCE sha256 column: byte-identical files (each pair yields the same rows once) —
# edd65d33923d4347, addf9d1991760aca (Azure/OpenAI file-search twins), 716d7126acbe5e4f,
# 9c0594023c93092e, 3e7656e1a0cbb8c8, 6c705a8bbc6d33e4 (nock twins) — plus one nock entry recorded
# in two files (the Titan InvokeModel call with x-amzn-RequestId 81039412-…, same response).
DUPLICATE_ROWS = 6 + 1
# PROVENANCE openai_batch notes: 65 joinable TimeEscaper requests/results, 3 Groq, and 13
# koumatsumoto `/v1/responses` results whose request file was not copied.
BATCH_ROWS = {"TimeEscaper": 65, "cho-groq": 3, "koumatsumoto": 13}


def folder(path: str) -> str:
    return Path(path).resolve().relative_to(REAL_LOGS.resolve()).parts[0]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    if not REAL_LOGS.is_dir():
        pytest.skip("../shared/real_logs is not present")
    return ingest_case(REAL_LOGS, tmp_path_factory.mktemp("real_logs"))


@pytest.fixture(scope="module")
def per_folder(corpus: Ingested) -> dict[str, dict[str, Any]]:
    agg: dict[str, dict[str, Any]] = defaultdict(lambda: Counter())
    for f in corpus.manifest["files"]:
        c = agg[folder(f["path"])]
        c["files"] += 1
        for k in ("lines_read", "ingested", "skipped", "rejected", "rows_emitted", "items_skipped"):
            c[k] += f[k]
    return agg


def rows_of(corpus: Ingested, name: str) -> list[dict[str, Any]]:
    return [r for r in corpus.rows if folder(r["source_file"]) == name]


def test_every_file_read_nothing_rejected(corpus: Ingested, per_folder: dict) -> None:
    assert_reconciles(corpus.manifest)
    t = corpus.manifest["totals"]
    assert (t["files_read"], t["files_error"], t["rejected"]) == (254, 0, 0)
    assert {k: v["files"] for k, v in per_folder.items()} == FILES
    assert corpus.manifest["paths_not_read"] == [{"path": str(REAL_LOGS / "PROVENANCE.md"), "reason": "not_a_log_file_extension"}]
    assert t["skipped"] == CLAUDE_CODE_NON_CALL_LINES + HAR_FILES_WITHOUT_LLM_CALLS
    assert t["rows_duplicate"] == DUPLICATE_ROWS


def test_records_per_folder(per_folder: dict) -> None:
    for name in ("anthropic_messages", "bedrock_converse", "claude_code", "codex_cli_rollout", "cohere_chat",
                 "gemini_generate_content", "http_recordings_nock", "openai_batch", "openai_chat", "openai_responses",
                 "stream_chunks"):
        assert per_folder[name]["lines_read"] == RECORDS[name], name  # one record per object / line / array item
    # Container files: HAR entries, inspect model events and Jaeger spans live inside one record per file.
    har = per_folder["http_recordings_har"]
    # The non-generation entries are alone in their 3 files, so those records are skipped whole.
    assert har["rows_emitted"] + HAR_NOT_GENERATION == RECORDS["http_recordings_har"]
    assert (har["skipped"], har["items_skipped"]) == (HAR_FILES_WITHOUT_LLM_CALLS, 0)
    assert per_folder["inspect_eval_log"]["rows_emitted"] == RECORDS["inspect_eval_log"]
    jaeger = per_folder["otel_genai_jaeger"]
    assert jaeger["rows_emitted"] + jaeger["items_skipped"] == RECORDS["otel_genai_jaeger"]


def test_single_body_folders(corpus: Ingested, per_folder: dict) -> None:
    for name in ("anthropic_messages", "bedrock_converse", "cohere_chat", "gemini_generate_content", "openai_chat", "openai_responses"):
        assert per_folder[name]["rows_emitted"] == RECORDS[name], name
        rows = rows_of(corpus, name)  # the store: byte-identical twin files are kept once
        errors = [r for r in rows if r["finish_reason"] == "error"]
        assert len(errors) == ERROR_BODIES.get(name, 0), name
        assert all(r["usage_missing"] is False for r in rows if r not in errors), name
    assert {r["provider"] for r in rows_of(corpus, "anthropic_messages")} == {"anthropic"}
    assert {r["provider"] for r in rows_of(corpus, "cohere_chat")} == {"cohere"}
    assert {r["endpoint"] for r in rows_of(corpus, "bedrock_converse")} == {"converse"}


def test_openai_compatible_providers_from_file_names(corpus: Ingested) -> None:
    # PROVENANCE lists these folders' files as vercel-ai__<provider>__…; xAI appears as both
    # `xai` and `openai-compatible__chat_xai-*`.
    expected = {"alibaba": "alibaba", "deepseek": "deepseek", "groq": "groq", "mistral": "mistral", "perplexity": "perplexity",
                "xai": "xai", "openai-compatible": "xai", "openai": "openai"}
    for r in rows_of(corpus, "openai_chat"):
        tag = Path(r["source_file"]).name.split("__")[1]
        assert r["provider"] == expected[tag], r["source_file"]
    legacy = [r for r in rows_of(corpus, "openai_chat") if r["endpoint"] == "completions"]
    assert [Path(r["source_file"]).name for r in legacy] == ["vercel-ai__openai__completion_openai-completion-text.json"]


def test_token_buckets_add_up_to_provider_totals(corpus: Ingested) -> None:
    checked = 0
    for r in corpus.rows:
        raw = json.loads(r["usage_raw"]) if r["usage_raw"] else None
        if not isinstance(raw, dict) or r["source_format"] not in ("provider_body", "stream_chunks"):
            continue
        inputs = sum(r[k] or 0 for k in ("in_uncached", "in_cache_read", "in_cache_write_5m", "in_cache_write_1h", "in_cache_write_unspecified"))
        if "totalTokenCount" in raw:  # Gemini: total includes thoughts (PROVENANCE quirk), tool-use prompt
            assert inputs + r["out_total"] == raw["totalTokenCount"], r["source_file"]
            checked += 1
        elif "total_tokens" in raw and "prompt_tokens" in raw:  # OpenAI-compatible chat (xAI adds reasoning)
            assert inputs == raw["prompt_tokens"] and inputs + r["out_total"] == raw["total_tokens"], r["source_file"]
            checked += 1
        elif "total_tokens" in raw and "input_tokens" in raw:  # Responses API
            assert inputs == raw["input_tokens"] and inputs + r["out_total"] == raw["total_tokens"], r["source_file"]
            checked += 1
    assert checked >= 60


def test_claude_code_deduplicated_against_raw_lines(corpus: Ingested) -> None:
    # Independent scan: one API call per (message.id, requestId); its usage counted once, with the
    # largest output_tokens among its lines.
    calls: dict[tuple, dict] = {}
    for path in sorted((REAL_LOGS / "claude_code").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            if rec.get("type") == "assistant" and rec["message"].get("model") != "<synthetic>":
                key = (path.name, rec["message"]["id"], rec.get("requestId"))
                usage = rec["message"]["usage"]
                if key not in calls or usage["output_tokens"] > calls[key]["output_tokens"]:
                    calls[key] = usage
    rows = rows_of(corpus, "claude_code")
    assert len(rows) == len(calls) == 267
    assert sum(r["in_cache_read"] for r in rows) == sum(u["cache_read_input_tokens"] for u in calls.values())
    assert sum(r["out_total"] for r in rows) == sum(u["output_tokens"] for u in calls.values())
    sidechain = [r for r in rows if r["metadata_json"] and json.loads(r["metadata_json"]).get("is_sidechain")]
    assert sidechain and all(Path(r["source_file"]).name.startswith("d-kimuson") for r in sidechain)


def test_codex_differenced_usage_adds_up_to_the_cumulative_total(corpus: Ingested) -> None:
    for path in sorted((REAL_LOGS / "codex_cli_rollout").glob("madshn*.jsonl")):
        last, distinct, prev = None, 0, None
        for line in path.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            info = rec["payload"].get("info") if rec["type"] == "event_msg" else None
            if rec["payload"].get("type") == "token_count" and info:
                last = info["total_token_usage"]
                distinct += last["total_tokens"] != prev
                prev = last["total_tokens"]
        rows = [r for r in rows_of(corpus, "codex_cli_rollout") if Path(r["source_file"]).name == path.name]
        assert len(rows) == distinct
        assert sum(r["in_uncached"] + r["in_cache_read"] for r in rows) == last["input_tokens"]
        assert sum(r["in_cache_read"] for r in rows) == last["cached_input_tokens"]
        assert sum(r["out_total"] for r in rows) == last["output_tokens"]
        assert sum(r["out_reasoning"] for r in rows) == last["reasoning_output_tokens"]
    # The semi-synthetic fixture's "[trimmed for fixture]" timestamps give rows without ts, no crash.
    fixture = [r for r in rows_of(corpus, "codex_cli_rollout") if "jazzyalex" in r["source_file"]]
    assert fixture and any(r["ts"] is None for r in fixture)


def test_http_captures(corpus: Ingested, per_folder: dict) -> None:
    assert per_folder["http_recordings_nock"]["rows_emitted"] == RECORDS["http_recordings_nock"]
    nock = rows_of(corpus, "http_recordings_nock")
    assert sum(r["status_code"] == 403 for r in nock) == NOCK_403
    assert all(r["finish_reason"] == "error" for r in nock if r["status_code"] == 403)
    gz_chat = [r for r in nock if "openai-chat-completions" in r["source_file"] and "streaming" not in r["source_file"]]
    assert gz_chat and all((r["response_text"] or r["response_tool_calls"]) and r["usage_missing"] is False for r in gz_chat)  # gzip-hex decoded
    har = rows_of(corpus, "http_recordings_har")
    # PROVENANCE: startedDateTime 2024-02-12 … 2026-05-28; every entry has timings.
    assert min(r["ts"] for r in har).date().isoformat() == "2024-02-12"
    assert max(r["ts"] for r in har).date().isoformat() == "2026-05-28"
    assert all(r["latency_ms"] is not None for r in har)
    eventstream = [r for r in har if "bedrock" in r["source_file"] and "streaming" in r["source_file"]]
    assert len(eventstream) == 4 and all(r["is_stream"] and r["response_text"] for r in eventstream)


def test_inspect_and_jaeger(corpus: Ingested) -> None:
    browser = [r for r in rows_of(corpus, "inspect_eval_log") if r["source_file"].endswith("_browser.json")]
    assert len(browser) == 5 and sum(r["in_cache_read"] for r in browser) == INSPECT_BROWSER_CACHED
    trace = json.loads((REAL_LOGS / "otel_genai_jaeger" / "ponchotitlan__packet-panic-agntcy__traces.json").read_text())
    chat_spans = [s for s in trace["data"][0]["spans"] if any(t["key"] == "gen_ai.operation.name" and t["value"] == "chat" for t in s["tags"])]
    rows = rows_of(corpus, "otel_genai_jaeger")
    assert len(rows) == len(chat_spans) == 5
    assert sum(r["in_uncached"] + r["in_cache_read"] for r in rows) == sum(
        next(t["value"] for t in s["tags"] if t["key"] == "gen_ai.usage.input_tokens") for s in chat_spans
    )


def test_streams_one_row_per_file(corpus: Ingested) -> None:
    rows = rows_of(corpus, "stream_chunks")
    assert len(rows) == FILES["stream_chunks"] and all(r["is_stream"] for r in rows)
    by_file = {Path(r["source_file"]).name.split("__")[1]: r for r in rows}
    # PROVENANCE: Bedrock ConverseStream ends with a metadata event holding usage and latencyMs.
    assert (by_file["amazon-bedrock"]["out_total"], by_file["amazon-bedrock"]["latency_ms"]) == (55, 2040)
    assert all(r["usage_missing"] is False for r in rows)


def test_openai_batch(corpus: Ingested) -> None:
    rows = rows_of(corpus, "openai_batch")
    for source, n in BATCH_ROWS.items():
        assert sum(source in r["source_file"] for r in rows) == n, source
    assert all(r["is_batch"] and r["response_text"] for r in rows)
    joined = [r for r in rows if "TimeEscaper" in r["source_file"]]
    assert all(r["messages"] for r in joined)  # request side joined by custom_id
    assert {r["provider"] for r in rows if "cho-groq" in r["source_file"]} == {"groq"}
    assert {r["endpoint"] for r in rows if "koumatsumoto" in r["source_file"]} == {"responses"}
