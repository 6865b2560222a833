"""End to end: on the sample and on a second planted world whose answer is "migrate", every output
(report.md, report.html, the CLI line, report.json, weekly.md/json) states the same decision, and the
figures it rests on match the generator's truth (sample_logs/generate.py, which shares no code with
the tool).

The migrate world is generated here (5,000 calls over 30 days, seed 11) and judged with the
checklist's economics scaled 1:1000 (a 5 USD/month bill where the guide says 5,000; 20 USD one-time,
1 USD/month infrastructure; 100 examples per task type where the guide says 1,000), so that a world
small enough for a unit test is a high-spend, repetitive one with enough examples per task type."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from pipeline.report.decide import DECISIONS

ROOT = Path(__file__).resolve().parent.parent
MIGRATE_CONFIG = """
[report]
currency = "USD"
usd_to_currency = 1.0
sign1_min_monthly_cost_after_caching = 5.0
factor_cost_stay_below = 3.0
factor_cost_switch_above = 5.0
fine_tune_one_time_cost = 20.0
local_infra_monthly_cost = 1.0
min_examples_per_task = 100
factor_examples_stay_below = 50
factor_examples_switch_above = 100
task_spend_stay_below = 1.0
task_spend_finetune_above = 10.0
"""


def outputs_agree(workdir: Path, cli_text: str) -> dict:
    """Every output of `workdir` states the one decision report.json holds; returns report.json."""
    from pipeline.report.weekly import weekly_report

    report = json.loads((workdir / "report" / "report.json").read_text(encoding="utf-8"))
    value = report["verdict"]["decision"]
    title = DECISIONS[value]
    assert report["verdict"]["title"] == title
    md = (workdir / "report" / "report.md").read_text(encoding="utf-8")
    html = (workdir / "report" / "report.html").read_text(encoding="utf-8")
    assert re.findall(r"^## Decision: (.+)$", md, re.M) == [title]
    assert f"(**{title}**)" in md.split("## Decision framework", 1)[1]
    assert re.findall(r'data-decision="([a-z_]+)"', html) == [value]
    assert re.findall(r'<div class="label">Decision — (.+?)</div>', html) == [title]
    assert re.findall(r"^  decision: (.+?) \(([a-z_]+)\):", cli_text, re.M) == [(title.upper(), value)]
    weekly = weekly_report(workdir)
    assert weekly.weekly["decision"]["decision"] == value
    assert re.findall(r"\*\*decision\*\*: (.+?) \(([a-z_]+)\)", (workdir / "report" / "weekly.md").read_text()) == [
        (title.upper(), value)]
    assert f"decision: {title.upper()} ({value})" in weekly.summary()
    for other in DECISIONS.values():
        if other != title:
            assert f"## Decision: {other}\n" not in md
    return report


def dataset_examples_by_task(workdir: Path) -> tuple[Counter, Counter]:
    import pyarrow.parquet as pq

    lineage = pq.read_table(workdir / "dataset" / "lineage.parquet").to_pylist()
    labels = pq.read_table(workdir / "audit" / "request_labels.parquet", columns=["request_id", "task_type"])
    task_of = dict(zip(labels["request_id"].to_pylist(), labels["task_type"].to_pylist(), strict=True))
    examples = Counter(task_of.get(r["request_id"]) for r in lineage if r["kind"] == "example")
    evals = Counter(task_of.get(r["request_id"]) for r in lineage if r["kind"] == "example" and r["split"] == "eval")
    return examples, evals


def test_the_sample_states_one_decision_everywhere(sample_run) -> None:
    cli_text = sample_run.stages["report"].summary()
    report = outputs_agree(sample_run.workdir, cli_text)
    assert report["verdict"]["decision"] == "fix_caching_first"  # derived from truth in test_report.py


@pytest.fixture(scope="module")
def migrate_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    from click.testing import CliRunner

    from pipeline.cli import cli

    root = tmp_path_factory.mktemp("migrate_world")
    subprocess.run([sys.executable, str(ROOT / "sample_logs" / "generate.py"), "--out", str(root / "logs"),
                    "--requests", "5000", "--days", "30", "--seed", "11", "--workers", "1"],
                   check=True, capture_output=True)
    config = root / "migrate.toml"
    config.write_text(MIGRATE_CONFIG, encoding="utf-8")
    result = CliRunner().invoke(cli, ["run", str(root / "logs"), "--out", str(root / "out"), "--config", str(config),
                                      "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    truth = json.loads((root / "logs" / "truth.json").read_text(encoding="utf-8"))
    return root / "out", truth, result.output


def test_migrate_world_states_migrate_everywhere(migrate_world) -> None:
    workdir, truth, cli_text = migrate_world
    report = outputs_agree(workdir, cli_text)
    assert report["verdict"]["decision"] == "migrate"
    assert report["verdict"]["actions"]["fine_tune"]
    assert [s["passed"] for s in report["verdict"]["reasons"] if s["check"] in ("framework", "payback", "ready")] == [
        True, True, True]


def test_migrate_world_figures_against_truth(migrate_world) -> None:
    workdir, truth, _ = migrate_world
    report = json.loads((workdir / "report" / "report.json").read_text(encoding="utf-8"))
    # Money: one currency (USD at 1.0 here), the run-rate from the truth's spend.
    monthly = truth["spend"]["total_usd"] / truth["window"]["days"] * 30.44
    assert report["cost"]["currency"] == "USD"
    assert report["cost"]["monthly_run_rate"] == pytest.approx(monthly, rel=0.01)
    # The switch side from truth with the scaled thresholds: the bill (~16 USD/month > 5, growing 4%/week),
    # short outputs (no reasoning), x2.77 in six months; the largest type has far more than 100 examples.
    assert monthly > 5 and truth["growth"]["weekly_growth_rate"] > 0
    assert (1 + truth["growth"]["weekly_growth_rate"]) ** 26 >= 2
    with gzip.open(workdir.parent / "logs" / "truth_requests.jsonl.gz", "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    assert sum((r["output_tokens"] or 0) > 2000 for r in rows) / len(rows) < 0.20
    switch = {f["name"] for f in report["framework"]["factors"] if f["side"] == "fine-tuning"}
    assert {"Monthly API cost after caching", "Training data available", "Need for frontier reasoning",
            "Usage trajectory"} <= switch
    # Per-task readiness is what the dataset kept for each type (lineage), and each type to fine-tune has
    # at least 100 of them; break-even is the one-time cost over the monthly saving.
    examples, evals = dataset_examples_by_task(workdir)
    rows_by_id = {t["id"]: t for t in report["task_types"]}
    for tid in report["verdict"]["actions"]["fine_tune"]:
        assert rows_by_id[tid]["dataset_examples"] == examples[tid] >= 100
        assert rows_by_id[tid]["eval_examples"] == evals[tid]
    cost = report["cost"]
    training = json.loads((workdir / "dataset" / "manifest.json").read_text())["estimate"]["training_cost_usd"]
    assert cost["one_time_fine_tune_cost"] == pytest.approx(20.0 + training, abs=0.01)
    assert cost["break_even_months"] == pytest.approx(cost["one_time_fine_tune_cost"] / cost["monthly_savings_if_migrated"],
                                                      abs=0.05)
    assert cost["break_even_months"] <= 24
