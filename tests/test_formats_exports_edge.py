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
