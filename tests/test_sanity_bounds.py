"""Sanity bounds (issue 17 row: `2**62` tokens and timestamps at epoch 86400 were accepted without a
warning: a 47,483-day window and a cost of $11,529,215,046,068.48). Planted outliers just inside
and just outside each bound; the report lists the outside ones and shows the trimmed window."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit import run_audits
from pipeline.ingest import ingest
from pipeline.report import render_report
from tests.test_workdir_lock import write_logs

ENVELOPE = (
    '{"id":"%s","timestamp":"%s","provider":"openai","endpoint":"/v1/chat/completions",'
    '"request":{"model":"gpt-4o","messages":[{"role":"user","content":"q %s"}]},'
    '"response":{"id":"chatcmpl-%s","object":"chat.completion","created":1784020323,"model":"gpt-4o",'
    '"choices":[{"index":0,"message":{"role":"assistant","content":"a"},"finish_reason":"stop"}],'
    '"usage":{"prompt_tokens":%d,"completion_tokens":1}}}'
)
PLANTED = {  # id: (timestamp, prompt tokens)
    "tok_inside": ("2026-07-10T10:00:00Z", 1_999_999),   # 2,000,000 tokens in all: at the bound
    "tok_outside": ("2026-07-10T11:00:00Z", 2_000_000),  # 2,000,001
    "tok_absurd": ("2026-07-10T12:00:00Z", 2**62),
    "cost_inside": ("2026-07-11T10:00:00Z", 399_000),    # $0.99751 at gpt-4o's $2.50/M + $10/M
    "cost_outside": ("2026-07-11T11:00:00Z", 400_000),   # $1.00001
    "ts_inside": ("2026-06-20T00:00:00Z", 9),            # the earliest plausible day itself
    "ts_epoch": ("1970-01-02T00:00:00Z", 9),             # epoch 86400
    "ts_before": ("2026-06-19T23:59:59Z", 9),
}
CONFIG = {"report": {"sanity_earliest": "2026-06-20", "sanity_max_request_cost_usd": 1.0}}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    tmp = tmp_path_factory.mktemp("sanity")
    write_logs(tmp / "logs", "ok", 60)  # 2026-07-01 .. 2026-07-28
    with open(tmp / "logs" / "planted.jsonl", "w", encoding="utf-8") as f:
        for rid, (ts, prompt) in PLANTED.items():
            f.write(ENVELOPE % (rid, ts, rid, rid, prompt) + "\n")
    work = tmp / "w"
    ingest([tmp / "logs"], work, progress=False)
    run_audits(work)
    result = render_report(work, CONFIG)
    return json.loads(result.paths["json"].read_text()), work


def test_outliers_outside_each_bound_are_listed_and_inside_ones_are_not(report: tuple[dict, Path]) -> None:
    r, _ = report
    by_reason: dict[str, set[str]] = {}
    for o in r["sanity"]["outliers"]:
        by_reason.setdefault(o["reason"], set()).add(o["request_id"])
    assert by_reason["tokens"] == {"tok_outside", "tok_absurd"}
    assert by_reason["timestamp"] == {"ts_epoch", "ts_before"}
    assert by_reason["cost"] == {"cost_outside", "tok_inside", "tok_outside", "tok_absurd"}
    assert r["sanity"]["counts"] == {"tokens": 2, "timestamp": 2, "cost": 4}
    absurd = next(o for o in r["sanity"]["outliers"] if o["request_id"] == "tok_absurd" and o["reason"] == "tokens")
    assert absurd["tokens"] == 2**62 + 1 and absurd["source"].endswith("planted.jsonl:3")


def test_window_shown_is_the_trimmed_one(report: tuple[dict, Path]) -> None:
    r, _ = report
    assert r["window"] == {"start": "2026-06-20", "end": "2026-07-28", "days": 39.0}
    assert r["window_untrimmed"]["start"] == "1970-01-02" and r["window_untrimmed"]["days"] > 20_000


def test_warnings_are_in_every_rendering(report: tuple[dict, Path]) -> None:
    r, work = report
    warnings = r["sanity"]["warnings"]
    assert len(warnings) == 3
    assert warnings[0].startswith("2 request(s) report more than 2,000,000 tokens")
    assert "the window shown is the trimmed 39 days" in warnings[1]
    assert warnings[2].startswith("4 request(s) cost more than $1.00 each")
    md = (work / "report" / "report.md").read_text()
    html = (work / "report" / "report.html").read_text()
    assert "**Sanity warnings**" in md and "tok_absurd" in md.replace("\\_", "_")
    assert 'id="sanity"' in html and "tok_absurd" in html


def test_clean_logs_give_no_sanity_warning(sample_run) -> None:  # noqa: ANN001
    r = json.loads(sample_run.report_paths["json"].read_text())
    assert r["sanity"]["warnings"] == [] and "window_untrimmed" not in r
