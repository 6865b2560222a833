"""Ingest core: formats of the foundation issue, exclusive usage buckets, accounting, idempotency."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.ingest import ingest

CASES = Path(__file__).parent / "cases" / "ingest"


def rows(workdir: Path) -> dict[str, dict]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    rel = con.sql(
        f"SELECT * FROM read_parquet('{workdir}/requests/*/*.parquet', hive_partitioning = true) ORDER BY request_id"
    )
    return {r["request_id"]: r for r in (dict(zip(rel.columns, t, strict=True)) for t in rel.fetchall())}


def assert_reconciles(manifest: dict) -> None:
    for f in manifest["files"]:
        assert f["lines_read"] == f["blank"] + f["ingested"] + f["skipped"] + f["rejected"], f
        assert f["rows_emitted"] == f["rows_written"] + f["rows_duplicate"], f
    t = manifest["totals"]
    assert t["lines_read"] == t["blank"] + t["ingested"] + t["skipped"] + t["rejected"]


@pytest.fixture(scope="module")
def cases_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    work = tmp_path_factory.mktemp("work")
    result = ingest([CASES], work, progress=False)
    return work, result.manifest


def test_envelope_openai_exclusive_buckets(cases_store: tuple[Path, dict]) -> None:
    r = rows(cases_store[0])["env-oa-1"]
    # prompt_tokens 2210 INCLUDES cached 2048 -> 162 uncached; nothing double-counted.
    assert (r["in_uncached"], r["in_cache_read"], r["out_total"], r["out_reasoning"]) == (162, 2048, 18, 0)
    assert r["in_cache_write_5m"] is None and r["in_cache_write_unspecified"] is None
    assert r["provider"] == "openai" and r["model"] == "gpt-4.1-mini"
    assert r["model_resolved"] == "gpt-4.1-mini-2025-04-14"
    assert r["finish_reason"] == "tool_calls"
    assert r["response_tool_calls"][0]["name"] == "lookup_order"
    assert json.loads(r["response_tool_calls"][0]["arguments"]) == {"order_id": "48213"}
    assert r["system_text"] == "You are SupportBot for Acme."
    assert [m["role"] for m in r["messages"]] == ["user"]
    assert r["messages"][0]["content"] == "Where is order #48213?"
    assert json.loads(r["tools_json"])[0]["name"] == "lookup_order"
    assert r["latency_ms"] == 964 and r["ttft_ms"] == 402
    assert r["session_id"] == "conv_77" and r["user_id"] == "u_7f3a"
    assert r["feedback_score"] == -1.0
    assert r["ts"].isoformat() == "2026-07-14T09:12:04.377000+00:00"
    assert r["date"] == "2026-07-14"


def test_envelope_anthropic_exclusive_buckets(cases_store: tuple[Path, dict]) -> None:
    r = rows(cases_store[0])["env-an-1"]
    # Anthropic input_tokens EXCLUDES cache reads/writes: keep each bucket as reported.
    assert (r["in_uncached"], r["in_cache_read"], r["in_cache_write_1h"], r["in_cache_write_5m"]) == (312, 6144, 1840, 0)
    assert r["in_cache_write_unspecified"] is None
    assert r["out_total"] == 188 and r["finish_reason"] == "stop" and r["finish_reason_raw"] == "end_turn"
    assert [(b["segment"], b["index"], b["ttl"]) for b in r["cache_breakpoints"]] == [("system", 0, "1h")]
    roles = [m["role"] for m in r["messages"]]
    assert roles == ["user", "assistant", "tool"]  # tool_result became a role=tool message
    assert r["messages"][1]["tool_calls"][0]["name"] == "read_file"
    assert r["messages"][2]["tool_call_id"] == "toolu_01"
    assert r["feedback_score"] == 1.0  # 5 of 5 stars
    assert r["ts"].isoformat() == "2026-07-14T09:13:20+00:00"  # epoch seconds


def test_envelope_error_and_n_choices(cases_store: tuple[Path, dict]) -> None:
    by_id = rows(cases_store[0])
    err = by_id["env-err-1"]
    assert (err["finish_reason"], err["status_code"], err["error_type"]) == ("error", 429, "rate_limit_error")
    assert err["response_text"] is None and err["usage_missing"] is True
    assert err["ts"].isoformat().startswith("2026-07-14T09:15:00.123")  # epoch milliseconds
    n2 = by_id["env-n2"]
    assert n2["n_choices"] == 2 and n2["response_text"] == "Red."  # choice index 0, not list order
    assert [c["text"] for c in n2["choices"]] == ["Red.", "Blue."]
    assert n2["system_text"] == "Be brief."  # developer role is system text


def test_openai_batch_joined_by_custom_id(cases_store: tuple[Path, dict]) -> None:
    by_id = rows(cases_store[0])
    assert by_id["ticket-1"]["response_text"] == "returns"  # output order differs from input order
    assert by_id["ticket-2"]["response_text"] == "shipping"
    assert by_id["ticket-1"]["is_batch"] is True
    assert by_id["ticket-1"]["messages"][0]["content"] == "My refund never arrived"
    assert by_id["ticket-1"]["ts"].isoformat() == "2026-07-14T12:10:01+00:00"  # body `created`
    expired = by_id["ticket-3"]
    assert expired["finish_reason"] == "error" and expired["error_type"] == "batch_expired"
    assert expired["messages"][0]["content"] == "Where is it"


def test_litellm_json_and_csv(cases_store: tuple[Path, dict]) -> None:
    by_id = rows(cases_store[0])
    r = by_id["chatcmpl-7c0b2f1e"]
    # prompt_tokens (12480) is INCLUSIVE; cache reads come from metadata.usage_object.
    assert (r["in_uncached"], r["in_cache_read"], r["out_total"]) == (576, 11904, 210)
    assert r["latency_ms"] == 2843 and round(r["ttft_ms"]) == 721
    assert r["cost_reported_usd"] == pytest.approx(0.004127)
    assert r["session_id"] == "sess_9b1" and r["user_id"] == "cust_4411"
    c = by_id["csv-1"]
    assert (c["in_uncached"], c["in_cache_read"], c["out_total"]) == (476, 1024, 20)
    assert c["response_text"] == "hi" and c["messages"][0]["content"] == "hello, world"
    assert c["latency_ms"] == pytest.approx(1500)


def test_manifest_reconciles_and_counts_formats(cases_store: tuple[Path, dict]) -> None:
    work, manifest = cases_store
    assert_reconciles(manifest)
    assert manifest["totals"]["rejected"] == 0
    assert manifest["by_format"] == {
        "envelope": 4,
        "openai_batch_input": 3,
        "openai_batch_output": 3,
        "litellm_spend_log": 2,
    }
    assert manifest["totals"]["rows_written"] == len(rows(work)) == 9
    assert json.loads((work / "ingest_manifest.json").read_text())["run_id"] == manifest["run_id"]


def test_idempotent_and_incremental(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    shutil.copy(CASES / "envelope_mixed.jsonl", logs / "week1.jsonl")
    work = tmp_path / "work"
    first = ingest([logs], work, progress=False)
    assert first.totals["rows_written"] == 4
    # Same files again: unchanged files are not even re-read.
    again = ingest([logs], work, progress=False)
    assert again.totals["files_unchanged"] == 1 and again.totals["rows_written"] == 0
    # A copy of the same records under another name: read, but nothing written twice.
    shutil.copy(CASES / "envelope_mixed.jsonl", logs / "copy.jsonl")
    copied = ingest([logs], work, progress=False)
    assert copied.totals["rows_written"] == 0 and copied.totals["rows_duplicate"] == 4
    # Next week's file: only its records are added.
    shutil.copy(CASES / "litellm_spend.jsonl", logs / "week2.jsonl")
    weekly = ingest([logs], work, progress=False)
    assert weekly.totals["files_read"] == 1 and weekly.totals["rows_written"] == 1
    assert len(rows(work)) == 5
    assert_reconciles(weekly.manifest)


def test_reused_ids_with_different_content_are_both_kept(tmp_path: Path) -> None:
    a = tmp_path / "a_batch_input.jsonl"
    b = tmp_path / "b_batch_input.jsonl"
    shutil.copy(CASES / "batch_input.jsonl", a)
    b.write_text((CASES / "batch_input.jsonl").read_text().replace("refund never arrived", "card was charged twice"))
    work = tmp_path / "work"
    result = ingest([a, b], work, progress=False)
    ids = sorted(rows(work))
    # ticket-2/3 are the same request in both files (same content): stored once. ticket-1 differs:
    # its id was reused for another request, which is kept under a disambiguated id, not dropped.
    assert result.totals["rows_written"] == 4 and result.totals["rows_duplicate"] == 2
    assert ids[:2] == ["ticket-1", ids[1]] and ids[1].startswith("ticket-1~")
    # And re-ingesting both still adds nothing.
    a.touch()
    b.touch()
    assert ingest([a, b], work, progress=False).totals["rows_written"] == 0


def test_cli_ingest_and_formats(tmp_path: Path) -> None:
    runner = CliRunner(env={"COLUMNS": "100"})
    res = runner.invoke(cli, ["ingest", str(CASES), "--out", str(tmp_path / "w")], catch_exceptions=False)
    assert res.exit_code == 0
    assert "12 read = 12 ingested + 0 skipped + 0 rejected + 0 blank" in res.output
    res = runner.invoke(cli, ["formats"])
    assert res.exit_code == 0 and "openai_batch_output" in res.output and "envelope" in res.output
    res = runner.invoke(cli, ["ingest", str(tmp_path / "nope"), "--out", str(tmp_path / "w")])
    assert res.exit_code == 1
    assert res.output == f"Error: No input found: `{tmp_path / 'nope'}` does not exist.\n"
