"""The sample logs ingest exactly as the generator's truth says: every API call, every bad line."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb


def test_every_planted_call_is_stored_and_every_bad_record_rejected(
    sample_workdir: Path, sample_truth: dict, sample_truth_requests: dict[str, dict]
) -> None:
    manifest = json.loads((sample_workdir / "ingest_manifest.json").read_text())
    t = manifest["totals"]
    assert t["rows_written"] == sample_truth["requests"]["total_api_calls"]
    assert t["rejected"] == sample_truth["bad_records"]["total"]
    assert t["lines_read"] == t["blank"] + t["ingested"] + t["skipped"] + t["rejected"]
    con = duckdb.connect()
    stored = con.execute(
        f"SELECT request_id, model, finish_reason FROM read_parquet('{sample_workdir}/requests/*/*.parquet')"
    ).fetchall()
    ids = {r[0] for r in stored}
    assert ids == set(sample_truth_requests)  # the same calls, by the ids the generator planted
    by_model: dict[str, int] = {}
    for _, model, _ in stored:
        by_model[model] = by_model.get(model, 0) + 1
    assert by_model == sample_truth["requests"]["by_model"]
    errors = sum(1 for r in stored if r[2] == "error")
    assert errors == sample_truth["requests"]["errors"]


def test_reported_token_buckets_match_truth(sample_workdir: Path, sample_truth: dict) -> None:
    con = duckdb.connect()
    uncached, read, write, out = con.execute(
        f"""SELECT sum(in_uncached), sum(in_cache_read),
                   sum(coalesce(in_cache_write_5m, 0) + coalesce(in_cache_write_1h, 0)
                       + coalesce(in_cache_write_unspecified, 0)),
                   sum(out_total)
            FROM read_parquet('{sample_workdir}/requests/*/*.parquet')"""
    ).fetchone()
    tokens = sample_truth["tokens"]
    # Exclusive buckets: the generator reports OpenAI/LiteLLM usage inclusive and Anthropic exclusive;
    # after normalization every bucket must equal the planted totals exactly (no double counting).
    assert (uncached, read, write, out) == (
        tokens["uncached_input"], tokens["cache_read"], tokens["cache_write"], tokens["output_total"]
    )
    assert uncached + read + write == tokens["input_total"]
