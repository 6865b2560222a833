"""Hand-made edge cases of the export shapes (tests/cases/exports_edge/): an OpenTelemetry console
dump with a span cut in the middle, an SSE capture with comments, a multi-line `data:` and a broken
event, a LangSmith run whose post and patch are in different files, the Langfuse public-API trace
shape with scores, batch status objects, capture-time fields, unreadable YAML and zip files, and
files that are not logs at all (listed in the console summary)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from format_cases import CASES, Ingested, assert_reconciles, buckets, ingest_case

from pipeline.ingest import ingest


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    return ingest_case("exports_edge", tmp_path_factory.mktemp("exports_edge"))


def file_stats(case: Ingested, name: str) -> dict:
    return next(f for f in case.manifest["files"] if Path(f["path"]).name == name)


def rejects_of(case: Ingested, name: str) -> list[tuple[str, str, int]]:
    return [(r["kind"], r["reason"], r["source_line"]) for r in case.rejects if Path(r["source_file"]).name == name]


def test_accounting(case: Ingested) -> None:
    assert_reconciles(case.manifest)
    assert case.manifest["by_format"] == {"codex_rollout": 10, "envelope": 2, "langfuse_trace": 1, "langsmith_batch": 2, "otel_console_span": 2,
                                          "stream_chunks": 6}


def test_otel_console_dump(case: Ingested) -> None:
    f = file_stats(case, "otel_console_dump.log")
    # 5 values: HTTP span (skipped), chat span, a span cut by a crash (rejected), OpenLLMetry span, metrics (skipped).
    assert (f["lines_read"], f["ingested"], f["skipped"], f["rejected"], f["rows_emitted"]) == (5, 2, 2, 1, 2)
    assert rejects_of(case, "otel_console_dump.log") == [
        ("skipped", "not_an_llm_call_span", 1), ("rejected", "invalid_json", 67), ("skipped", "not_an_llm_call", 104)]
    chat = case.by_id("5b8efff798038103d269b633813fc60c:eee19b7ec3c1b174")
    # gen_ai.usage.input_tokens 2210 includes the 2048 cache reads.
    assert buckets(chat) == (162, 2048, None, None, None, 18, None)
    assert (chat["model"], chat["model_resolved"], chat["response_id"]) == ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "chatcmpl-console-1")
    assert chat["latency_ms"] == pytest.approx(1800) and chat["source_line"] == 30
    assert json.loads(chat["metadata_json"])["service_name"] == "support-bot"
    legacy = case.by_id("7a2c0e11d86f4f3b8b1f6f0d2a9c4e55:1c2d3e4f5a6b7c8d")
    assert buckets(legacy)[0::5] == (120, 0) and legacy["finish_reason"] == "error"
    assert legacy["error_message"] == "RateLimitError: 429" and legacy["messages"][0]["content"] == "Summarise the ticket"


def test_sse_capture_edges(case: Ingested) -> None:
    f = file_stats(case, "sse_edge.txt")
    # comment block and `[DONE]` are blanks; the event with a cut JSON payload is rejected on its line.
    assert (f["blank"], f["rejected"], f["ingested"]) == (2, 1, 6)
    assert rejects_of(case, "sse_edge.txt") == [("rejected", "invalid_json", 13)]  # the block starts at its `event:`
    r = case.by_id("msg_edge_1")
    assert r["response_text"] == "Hi"  # from a payload split over two `data:` lines
    assert buckets(r) == (40, 0, None, None, 1024, 7, None) and r["source_line"] == 3


def test_langsmith_post_and_patch_in_different_files(case: Ingested) -> None:
    r = case.by_id("5e1b0a3c-0d1e-4a1f-9b7c-2f3e4d5c6b7a")
    assert buckets(r) == (1500 - 1280, 1280, None, None, None, 12, 0)
    assert (r["response_text"], r["session_id"], r["source_line"]) == ("It shipped today.", "conv-42", 1)
    assert Path(r["source_file"]).name == "langsmith_post_only.json"
    assert r["latency_ms"] == pytest.approx(2400)
    assert rejects_of(case, "langsmith_post_only.json") == [("skipped", "not_an_llm_call", 1)]


def test_langfuse_api_trace_with_scores(case: Ingested) -> None:
    r = case.by_id("gen-1")
    assert buckets(r) == (300, 9000, None, None, 500, 40, None)  # usageDetails are additive
    assert (r["user_id"], r["session_id"], r["system_text"]) == ("cust_4411", "conv_77", "You are SupportBot.")
    scores = json.loads(r["feedback_json"])
    assert [s["name"] for s in scores] == ["user-feedback", "helpfulness"]
    # trace-level thumbs-down (BOOLEAN 0 -> -1) and this generation's 0.75 (-> +0.5), averaged.
    assert r["feedback_score"] == pytest.approx(-0.25)
    assert sorted(x[1] for x in rejects_of(case, "langfuse_api_trace.json")) == ["not_an_llm_call", "observation_without_body"]


def test_batch_status_objects_are_skipped_not_rejected(case: Ingested) -> None:
    assert rejects_of(case, "statuses.jsonl") == [("skipped", "not_an_llm_call", 1), ("skipped", "not_an_llm_call", 2)]


def test_capture_time_fields_give_the_time(case: Ingested) -> None:
    assert case.by_id("msg_cap_1")["ts"] == datetime(2026, 10, 5, 9, 0, tzinfo=UTC)
    assert case.by_id("msg_cap_2")["ts"] == datetime.fromtimestamp(1791191000.5, tz=UTC)


def test_unreadable_yaml_and_zip_are_rejected_with_the_problem(case: Ingested) -> None:
    (yaml_reject,) = [r for r in case.rejects if r["source_file"].endswith("broken_cassette.yaml")]
    assert yaml_reject["reason"] == "invalid_yaml" and "line 3, column 3" in yaml_reject["detail"]
    (zip_reject,) = [r for r in case.rejects if r["source_file"].endswith("broken.eval")]
    assert zip_reject["reason"] == "corrupt_zip" and "inspect_ai" in zip_reject["detail"]


def test_summary_lists_files_not_read(case: Ingested) -> None:
    result = ingest([str(CASES / "exports_edge")], case.workdir, progress=False)  # all unchanged: summary only
    assert "  not read: 2 path(s) (.md 1, .png 1): NOTES.md, screenshot.png" in result.summary().splitlines()


def test_summary_caps_the_names_shown(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.jsonl").write_text('{"custom_id": "x", "method": "POST", "url": "/v1/chat/completions", "body": {}}\n')
    for i in range(7):
        (logs / f"img{i}.png").write_bytes(b"x")
    (logs / "Makefile").write_text("all:\n")
    line = next(x for x in ingest([str(logs)], tmp_path / "out", progress=False).summary().splitlines() if "not read" in x)
    assert line == ("  not read: 8 path(s) (.png 7, no extension 1): Makefile, img0.png, img1.png, img2.png, img3.png, "
                    "… (3 more in ingest_manifest.json)")


def test_codex_rollout_without_token_counts_gives_one_row_per_call(case: Ingested) -> None:
    rows = sorted((r for r in case.rows if r["source_format"] == "codex_rollout"), key=lambda r: r["ts"])
    # A call ends where its outputs are followed by the next input item (tool output, user turn).
    assert [(r["ts"].isoformat(), r["model"], len(r["messages"]), r["response_text"]) for r in rows] == [
        ("2026-10-05T09:00:04.200000+00:00", "gpt-5-codex", 1, None),
        ("2026-10-05T09:00:11.500000+00:00", "gpt-5-codex", 3, "All 3 tests pass."),
        ("2026-10-05T09:02:03+00:00", "gpt-5-codex", 5, "Lint is clean."),
    ]
    assert rows[0]["response_tool_calls"][0]["name"] == "shell"
    assert all(r["usage_missing"] and r["session_id"] == "0199aaaa-0000-7000-8000-000000000001" for r in rows)
    assert [r["parent_id"] for r in rows] == [None, rows[0]["request_id"], rows[1]["request_id"]]


def _eventstream(event_type: str, payload: dict) -> bytes:
    """One AWS event-stream message (prelude, CRCs, string headers), as Bedrock sends it."""
    import struct
    import zlib

    headers = b""
    for name, value in ((":event-type", event_type), (":message-type", "event"), (":content-type", "application/json")):
        headers += bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(value)) + value.encode()
    body = json.dumps(payload).encode()
    total = 16 + len(headers) + len(body)
    prelude = struct.pack(">II", total, len(headers))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + body
    return message + struct.pack(">I", zlib.crc32(message))


def test_bedrock_invoke_agent_stream_in_a_har(tmp_path: Path) -> None:
    import base64

    def step(kind: str, model: str, tokens: tuple[int, int]) -> bytes:
        trace = {kind: {"modelInvocationInput": {"foundationModel": model, "text": "Human: …", "type": kind}}}
        out = {kind: {"modelInvocationOutput": {"metadata": {"usage": {"inputTokens": tokens[0], "outputTokens": tokens[1]}},
                                                 "rawResponse": {"content": "…"}}}}
        part = {"agentId": "AGENT1", "agentAliasId": "TSTALIASID", "sessionId": "sess-77"}
        return _eventstream("trace", {**part, "trace": trace}) + _eventstream("trace", {**part, "trace": out})

    model = "anthropic.claude-3-5-sonnet-20241022-v2:0"
    stream = (step("preProcessingTrace", model, (1183, 42)) + step("orchestrationTrace", model, (1601, 108))
              + _eventstream("chunk", {"bytes": base64.b64encode(b"Your refund ").decode()})
              + _eventstream("chunk", {"bytes": base64.b64encode(b"was issued.").decode()})
              + step("postProcessingTrace", model, (300, 20)))
    har = {"log": {"version": "1.2", "entries": [{
        "startedDateTime": "2026-10-05T09:00:00.000Z", "time": 5120.0, "timings": {"wait": 900.0},
        "request": {"method": "POST", "url": "https://bedrock-agent-runtime.us-east-1.amazonaws.com/agents/AGENT1/agentAliases/"
                    "TSTALIASID/sessions/sess-77/text", "headers": [],
                    "postData": {"mimeType": "application/json", "text": json.dumps({"inputText": "Where is my refund?",
                                                                                      "enableTrace": True})}},
        "response": {"status": 200, "headers": [{"name": "x-amzn-RequestId", "value": "req-agent-1"},
                                                {"name": "Content-Type", "value": "application/vnd.amazon.eventstream"}],
                     "content": {"mimeType": "application/vnd.amazon.eventstream", "encoding": "base64",
                                 "text": base64.b64encode(stream).decode()}},
    }]}}
    (tmp_path / "agent.har").write_text(json.dumps(har))
    got = ingest_case(tmp_path / "agent.har", tmp_path / "out")
    (row,) = got.rows
    # Usage is the sum over the agent's three model invocations; the answer is the text chunks.
    assert buckets(row) == (1183 + 1601 + 300, None, None, None, None, 42 + 108 + 20, None)
    assert (row["model"], row["provider"], row["endpoint"], row["session_id"]) == (model, "bedrock", "invoke_agent", "sess-77")
    assert (row["response_text"], row["messages"][0]["content"]) == ("Your refund was issued.", "Where is my refund?")
    assert row["request_id"] == "req-agent-1" and row["latency_ms"] == 5120.0
    assert json.loads(row["metadata_json"])["model_invocations"] == 3


@pytest.mark.parametrize("chunk_chars", [7, 64, 1000, 1 << 23])
def test_concatenated_json_reads_the_same_whatever_the_chunk_size(chunk_chars: int) -> None:
    import io

    from pipeline.ingest import file_kinds
    from pipeline.ingest.reader import RawRecord

    data = (CASES / "exports_edge" / "otel_console_dump.log").read_bytes() + b'\n[1, 2.5e3]\n{"n": 12345678901234567890}'
    got = [(r.line, r.error is not None, r.value if not isinstance(r.value, dict) else r.value.get("name", sorted(r.value)[0]))
           for r in file_kinds.read_concatenated(io.BytesIO(data), RawRecord, chunk_chars=chunk_chars)]
    assert got == [(1, False, "POST"), (30, False, "chat gpt-4o-mini"), (67, True, None), (71, False, "openai.chat"),
                   (104, False, "resource_metrics"), (119, False, 1), (119, False, 2500.0), (120, False, "n")]


def test_compressed_captures_read_like_plain_ones(tmp_path: Path) -> None:
    import gzip

    import zstandard

    plain = {"sse.txt": CASES / "exports" / "sse" / "anthropic_stream.txt",
             "cassette.yaml": CASES / "exports" / "vcr" / "test_anthropic_with_raw_response_test_messages_with_raw_response_sync.yaml",
             "spans.log": CASES / "exports_edge" / "otel_console_dump.log"}
    (tmp_path / "gz").mkdir()
    for name, src in plain.items():
        data = src.read_bytes()
        packed = gzip.compress(data) if name != "spans.log" else zstandard.ZstdCompressor().compress(data)
        (tmp_path / "gz" / (name + (".gz" if name != "spans.log" else ".zst"))).write_bytes(packed)
    got = ingest_case(tmp_path / "gz", tmp_path / "out")
    assert sorted((r["request_id"], buckets(r)) for r in got.rows) == sorted(
        (r["request_id"], buckets(r)) for name in plain for r in ingest_case(plain[name], tmp_path / name).rows)
    assert len(got.rows) == 1 + 2 + 2


def test_curl_include_capture_with_headers_before_the_stream(tmp_path: Path) -> None:
    body = (CASES / "exports" / "sse" / "openai_stream.txt").read_bytes()
    headers = b"HTTP/2 200 \r\ncontent-type: text/event-stream; charset=utf-8\r\nx-request-id: req_1\r\n\r\n"
    (tmp_path / "curl-i.txt").write_bytes(headers + body)
    got = ingest_case(tmp_path / "curl-i.txt", tmp_path / "out")
    plain = ingest_case(CASES / "exports" / "sse" / "openai_stream.txt", tmp_path / "plain")
    (row,) = got.rows
    assert buckets(row) == buckets(plain.rows[0]) == (10, 0, None, None, None, 5, 0)
    f = got.manifest["files"][0]
    assert (f["blank"], f["rejected"], row["source_line"]) == (2, 0, 5)  # header block and [DONE] are blanks
