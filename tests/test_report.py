"""The report over the generated sample, asserted against the generator's truth (sample_logs/truth.json
and truth_requests.jsonl.gz), which shares no code with the tool.

Expected signs and framework sides are derived here from truth figures with the checklist's
published thresholds written out as literals, not read from ReportConfig, so a wrong default or a
wrong comparison in the tool fails these tests."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parent.parent
AUD_PER_USD = 1.5  # the report's default exchange factor (the guides' thresholds are AU$)
DAYS_PER_MONTH = 30.44


@pytest.fixture(scope="module")
def report(sample_run) -> dict:
    return json.loads(sample_run.report_paths["json"].read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def truth_rows(sample_logs_dir: Path) -> list[dict]:
    with gzip.open(sample_logs_dir / "truth_requests.jsonl.gz", "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def need(report: dict, source: str) -> None:
    """Skip while an upstream audit module is not installed; once it is, the assertion runs."""
    if not report["sources"].get(source):
        pytest.skip(f"upstream `{source}` not available yet: {report['not_measured']}")


def sign(report: dict, sign_id: int) -> dict:
    return next(s for s in report["signs"] if s["id"] == sign_id)


def factor(report: dict, name: str) -> dict:
    return next(f for f in report["framework"]["factors"] if f["name"] == name)


def test_all_three_files_and_schema(sample_run, report: dict) -> None:
    for path in sample_run.report_paths.values():
        assert path.is_file() and path.stat().st_size > 1000
    schema = json.loads((ROOT / "schemas" / "report.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(report, schema)
    assert len(report["signs"]) == 5 and len(report["framework"]["factors"]) == 8


def test_window_and_request_counts(report: dict, sample_truth: dict) -> None:
    assert report["window"]["start"] == sample_truth["window"]["start"]
    assert report["window"]["end"] == sample_truth["window"]["end"]
    assert report["window"]["days"] == sample_truth["window"]["days"]
    bad = sample_truth["bad_records"]["total"]
    rejected = report["requests"]["rejected_at_ingest"]
    assert 0 < rejected <= bad
    # Every API call is a request; bad records the ingest did not reject were kept as rows.
    assert report["requests"]["total"] == sample_truth["requests"]["total_api_calls"] + (bad - rejected)
    assert abs(report["requests"]["succeeded"] - sample_truth["requests"]["succeeded"]) <= bad - rejected


def test_cost_figures(report: dict, sample_truth: dict) -> None:
    spend = sample_truth["spend"]["total_usd"]
    days = sample_truth["window"]["days"]
    cost = report["cost"]
    assert cost["currency"] == "AUD" and cost["usd_to_currency"] == AUD_PER_USD
    assert cost["window_total"] == pytest.approx(spend * AUD_PER_USD, rel=0.01)
    assert cost["monthly_run_rate"] == pytest.approx(spend / days * DAYS_PER_MONTH * AUD_PER_USD, rel=0.01)
    # API-only prices every input token at the full rate: more than the bill, which used caching.
    assert cost["monthly_api_only"] > cost["monthly_run_rate"]
    # At ~14 AUD/month, 80,000 one-time never pays back against a 2,000/month local model.
    assert cost["break_even_months"] is None
    assert len(cost["projection"]) == 12


def test_daily_spend_matches_truth(report: dict, sample_truth: dict) -> None:
    by_day = {d["date"]: d for d in report["series"]["daily"]}
    for day, usd in sample_truth["spend"]["by_day"].items():
        assert by_day[day]["spend"] == pytest.approx(usd * AUD_PER_USD, rel=0.02, abs=0.01), day


def test_sign_one_and_the_cost_factor(report: dict, sample_truth: dict) -> None:
    monthly_aud = sample_truth["spend"]["total_usd"] / sample_truth["window"]["days"] * DAYS_PER_MONTH * AUD_PER_USD
    assert monthly_aud < 3000  # the checklist's stay column
    s1 = sign(report, 1)
    assert s1["threshold"] == 5000 and s1["measured"] and s1["triggered"] is False
    assert factor(report, "Monthly API cost after caching")["side"] == "caching"


def test_sign_two_is_the_simulated_ideal_cacheable_share(report: dict, sample_truth: dict) -> None:
    need(report, "audit_cache")
    shares = report["cache"]["simulated_share"]
    # The generator's "ideal" is a breakpoint after the stable system+tools prefix: the audit's ideal_bp.
    assert shares["ideal_bp"] == pytest.approx(sample_truth["cache"]["overall_ideal_share"], abs=0.02)
    assert shares["as_logged"] == pytest.approx(sample_truth["cache"]["overall_as_logged_share"], abs=0.02)
    # Sign 2 uses the best caching can do: breakpoints placed and dynamic spans moved after the stable part.
    s2 = sign(report, 2)
    assert s2["value"] == pytest.approx(shares["ideal"], abs=1e-4) and s2["value"] >= shares["ideal_bp"]
    assert s2["threshold"] == 0.30 and s2["triggered"] is (s2["value"] < 0.30)
    side = "caching" if s2["value"] > 0.60 else "fine-tuning" if s2["value"] < 0.30 else "unknown"
    assert factor(report, "Share of tokens that are cacheable")["side"] == side
    assert report["cache"]["reported_hit_share"] == pytest.approx(
        sample_truth["tokens"]["cache_read"] / sample_truth["tokens"]["input_total"], abs=0.02)


def test_prefix_breaker_is_the_planted_one(sample_run, report: dict, sample_truth: dict, truth_rows: list[dict]) -> None:
    need(report, "audit_cache")
    need(report, "audit_tasks")
    import pyarrow.parquet as pq

    planted = {tid for tid, t in sample_truth["task_types"].items() if t["prefix_breaker"]}
    labels = pq.read_table(sample_run.workdir / "audit" / "request_labels.parquet", columns=["request_id", "task_type"])
    tool_type = dict(zip(labels["request_id"].to_pylist(), labels["task_type"].to_pylist(), strict=True))
    expected = set()
    for tid in planted:
        ids = [tool_type.get(r["request_id"]) for r in truth_rows if r["task_type"] == tid]
        expected.add(max(set(ids), key=ids.count))  # the tool's id for the planted task type
    found = {b["task_type"] for b in report["cache"]["prefix_breakers"]}
    assert expected <= found, (expected, report["cache"]["prefix_breakers"])
    kinds = {b["kind"] for b in report["cache"]["prefix_breakers"] if b["task_type"] in expected}
    assert any(sample_truth["task_types"][tid]["prefix_breaker"]["kind"] in (k or "") for tid in planted for k in kinds)
    assert report["verdict"]["fix_prefix_breakers"]


def test_sign_three_and_task_variety(report: dict, sample_truth: dict) -> None:
    need(report, "audit_tasks")
    planted = len(sample_truth["task_types"])
    assert report["framework"]["factors"][2]["name"] == "Task variety"
    named = [t for t in report["task_types"] if t["id"] != "other"]
    assert abs(len(named) - planted) <= 1
    # The sample is templated traffic: every planted type follows one pattern.
    s3 = sign(report, 3)
    assert s3["measured"] and s3["threshold"] == 0.80


def test_signals_against_truth(report: dict, sample_truth: dict) -> None:
    need(report, "audit_tasks")
    ok = sample_truth["requests"]["succeeded"]
    sig = sample_truth["signals"]
    assert report["signals"]["regeneration_rate"] == pytest.approx(sig["regenerated"] / ok, abs=0.01)
    assert report["signals"]["edit_rate"] == pytest.approx(sig["edited"] / ok, abs=0.005)


def test_latency_and_growth_against_truth(report: dict, sample_truth: dict, truth_rows: list[dict]) -> None:
    need(report, "audit_traffic")
    import numpy as np

    # The report's latency is that of successful calls (what users waited for an answer).
    ok = [r["latency_ms"] for r in truth_rows if r["latency_ms"] is not None and r["status"] == "ok"]
    for q, value in zip(("p50_ms", "p90_ms", "p99_ms"), np.percentile(ok, [50, 90, 99]), strict=True):
        assert report["latency"][q] == pytest.approx(value, rel=0.05), q
    assert report["growth"]["weekly_growth_rate"] == pytest.approx(sample_truth["growth"]["weekly_growth_rate"], abs=0.015)
    s5 = sign(report, 5)
    assert s5["value"] == report["latency"]["p90_ms"] and s5["triggered"] is False  # no requirement stated


def test_framework_count_from_truth(report: dict, sample_truth: dict, truth_rows: list[dict]) -> None:
    """Apply the checklist's switch column to TRUTH figures (never to the report under test) and
    compare the count and the decision it implies."""
    need(report, "audit_cache")
    need(report, "audit_tasks")
    need(report, "audit_traffic")
    monthly_aud = sample_truth["spend"]["total_usd"] / sample_truth["window"]["days"] * DAYS_PER_MONTH * AUD_PER_USD
    sides = {}
    # 1. cost: ~12 AUD/month, below the stay column's 3,000 AU$.
    sides[1] = "caching" if monthly_aud < 3000 else "other"
    # 2. cacheable share: breakpoints alone already cache 51% (truth); ideal ordering only adds to that,
    #    so it is above the switch column's 30% (not on the switch side).
    assert sample_truth["cache"]["overall_ideal_share"] > 0.30
    sides[2] = "not switch"
    # 3. variety: the user turns of doc_summarize (pasted documents), code_review (diffs) and translate
    #    (free text) are not templated: 902 of 4,000 requests, so at most 77.5% follow a pattern (< 80%).
    free = sum(sample_truth["task_types"][t]["requests"] for t in ("doc_summarize", "code_review", "translate"))
    sides[3] = "not switch" if 1 - free / sample_truth["requests"]["total_api_calls"] < 0.80 else "switch"
    # 4. per task type: no planted type has more than 749 requests, so none can have > 1,000 examples.
    largest = max(t["requests"] for t in sample_truth["task_types"].values())
    sides[4] = "not switch" if largest <= 1000 else "switch"
    # 5. reasoning: share of requests with outputs over 2,000 tokens (the generator plants no reasoning tokens).
    long_share = sum((r["output_tokens"] or 0) > 2000 for r in truth_rows) / len(truth_rows)
    sides[5] = "switch" if long_share < 0.20 else "caching"
    # 6. latency: not stated in the config.
    sides[6] = "unknown"
    # 7. sensitivity: requests carrying planted secrets or PII.
    secrets = sample_truth["secrets"]["requests_with_secrets"] / sample_truth["requests"]["total_api_calls"]
    sides[7] = "switch" if secrets >= 0.05 else "caching"
    # 8. trajectory: the planted 4%/week compounds to x2.77 in 26 weeks (>= x2).
    sides[8] = "switch" if (1 + sample_truth["growth"]["weekly_growth_rate"]) ** 26 >= 2.0 else "not switch"
    switch = sum(v == "switch" for v in sides.values())
    assert switch == 2  # reasoning and trajectory
    assert report["framework"]["switch_count"] == switch
    assert [f["id"] for f in report["framework"]["factors"] if f["side"] == "fine-tuning"] == [
        i for i, v in sides.items() if v == "switch"]
    # Below the 3-or-more rule, with a planted prefix breaker (product_qa's timestamp) and breakpoints
    # alone gaining 6.6 points over the traffic as logged (truth: 44.5% -> 51.2%): fix caching first.
    gain = sample_truth["cache"]["overall_ideal_share"] - sample_truth["cache"]["overall_as_logged_share"]
    assert gain >= 0.05
    assert report["verdict"]["decision"] == "fix_caching_first"
    assert report["verdict"]["actions"]["fine_tune"] == [] and report["verdict"]["actions"]["build_dataset"] == []


def test_per_task_readiness_counts_dataset_examples(sample_run, report: dict, sample_truth: dict) -> None:
    """Per-task examples in the report equal what the dataset stage kept for that type (lineage), and
    the multi-turn chat collapses: far fewer examples than requests."""
    need(report, "audit_tasks")
    import pyarrow.parquet as pq

    lineage = pq.read_table(sample_run.workdir / "dataset" / "lineage.parquet").to_pylist()
    labels = pq.read_table(sample_run.workdir / "audit" / "request_labels.parquet", columns=["request_id", "task_type"])
    task_of = dict(zip(labels["request_id"].to_pylist(), labels["task_type"].to_pylist(), strict=True))
    from collections import Counter

    examples = Counter(task_of.get(r["request_id"]) for r in lineage if r["kind"] == "example")
    evals = Counter(task_of.get(r["request_id"]) for r in lineage if r["kind"] == "example" and r["split"] == "eval")
    rows = {t["id"]: t for t in report["task_types"]}
    for tid, n in examples.items():
        if tid in rows:
            assert rows[tid]["dataset_examples"] == n, tid
            assert rows[tid]["eval_examples"] == evals[tid], tid
    assert sum(t["dataset_examples"] or 0 for t in report["task_types"]) == report["dataset"]["train"] + report["dataset"]["eval"]
    chat = sample_truth["task_types"]["support_chat"]
    chat_row = max(report["task_types"], key=lambda t: (t["requests"] == chat["requests"], t["clean_requests"] or 0))
    assert chat_row["dataset_examples"] < chat_row["clean_requests"] / 3  # sessions of ~6 calls are one example


def test_feedback_rates_carry_their_base(report: dict, sample_truth: dict) -> None:
    need(report, "audit_tasks")
    sig = sample_truth["signals"]
    neg = report["signals"]["bases"]["negative_feedback_rate"]
    rated = sig["feedback_positive"] + sig["feedback_negative"]
    assert neg["base"] == rated and neg["count"] == sig["feedback_negative"] and neg["base_label"] == "rated responses"
    assert neg["display"] == f"{sig['feedback_negative'] / rated:.1%} of {rated:,} rated responses ({sig['feedback_negative']})"
    assert report["signals"]["bases"]["regeneration_rate"]["count"] == sig["regenerated"]


def truth_distribution_distance(workdir: Path, truth_rows: list[dict]) -> float:
    """Total-variation distance of the truth task-type mix: train examples vs the last 7 days."""
    from collections import Counter
    from datetime import datetime, timedelta

    import pyarrow.parquet as pq

    lineage = pq.read_table(workdir / "dataset" / "lineage.parquet").to_pylist()
    truth_type = {r["request_id"]: r["task_type"] for r in truth_rows}
    train = Counter(truth_type.get(r["request_id"], "other") for r in lineage
                    if r["kind"] == "example" and r["split"] == "train")
    stamps = {r["request_id"]: datetime.fromisoformat(r["ts"].replace("Z", "+00:00")) for r in truth_rows}
    end = max(stamps.values()).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    recent = Counter(r["task_type"] for r in truth_rows if stamps[r["request_id"]] > end - timedelta(days=7))
    nt, nr = sum(train.values()), sum(recent.values())
    return 0.5 * sum(abs(train[k] / nt - recent[k] / nr) for k in set(train) | set(recent))


def test_data_quality_against_truth(sample_run, report: dict, sample_truth: dict, truth_rows: list[dict]) -> None:
    dq = {c["id"]: c for c in report["data_quality"]["criteria"]}
    assert dq["no_leakage"]["value"] == 0 and dq["no_leakage"]["passed"] is True
    # Duplicates: exact + near duplicates planted among the requests the dataset built examples from.
    planted = sample_truth["dedup"]["exact_duplicate_requests"] + sample_truth["dedup"]["near_duplicate_requests"]
    share = report["dataset"]["duplicate_share"]
    assert share is not None and 0 < share < 2 * planted / sample_truth["requests"]["total_api_calls"] + 0.02
    assert dq["diversity"]["passed"] is (share <= 0.05)
    # Against truth: planted (near-)duplicates among the requests that reached dedup (not dropped earlier).
    import pyarrow.parquet as pq

    lineage = pq.read_table(sample_run.workdir / "dataset" / "lineage.parquet").to_pylist()
    reached = [r["request_id"] for r in lineage if r["kind"] == "example" or r["reason"] in ("duplicate", "near_duplicate")]
    truth = {r["request_id"]: r for r in truth_rows}
    planted_dups = sum(1 for rid in reached if rid in truth and (truth[rid]["duplicate_of"] or truth[rid]["near_duplicate_of"]))
    examples_built = sum(1 for r in lineage if r["kind"] == "example") + sum(
        1 for r in lineage if r["reason"] in ("duplicate", "near_duplicate"))
    assert share == pytest.approx(planted_dups / examples_built, abs=0.01)
    if report["sources"].get("audit_tasks"):
        answered = [r for r in truth_rows if r["status"] == "ok"]
        accepted = [r for r in answered if not r["regenerated"] and not r["edited"] and r["feedback"] != -1]
        assert dq["label_accuracy"]["value"] == pytest.approx(len(accepted) / len(answered), abs=0.01)
        assert dq["distribution_match"]["value"] == pytest.approx(
            truth_distribution_distance(sample_run.workdir, truth_rows), abs=0.02)


def test_markdown_and_html_say_the_verdict(sample_run, report: dict) -> None:
    md = sample_run.report_paths["md"].read_text(encoding="utf-8")
    html = sample_run.report_paths["html"].read_text(encoding="utf-8")
    assert f"## Decision: {report['verdict']['title']}" in md
    assert f'data-decision="{report["verdict"]["decision"]}"' in html
    assert "<script" not in html.lower()
    assert "<script" not in md.lower()
    assert md.count("| ") > 50  # the tables are there
    for needle in ("The five signs", "Decision framework", "Cost", "Task types", "Prefix breakers", "data-quality"):
        assert needle.lower() in md.lower()


def test_planted_html_in_prompts_stays_inert(sample_run, sample_truth: dict) -> None:
    """The sample plants <script>/HTML in prompts; nothing from them may become markup anywhere."""
    assert sample_truth["quality"]["html_injection"] > 0
    html = sample_run.report_paths["html"].read_text(encoding="utf-8").lower()
    assert "<script" not in html and "<img" not in html
