"""One decision, rendered everywhere: a world planted for each decision value (hand-built facts with
hand-worked figures), and every output (report.md heading, HTML banner, framework section, CLI line,
report.json, weekly.md) checked to state that same decision and no other."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from test_report_rules import USD, busy_facts

from pipeline.report.decide import DECISIONS, build_report
from pipeline.report.facts import Facts, TaskFacts
from pipeline.report.render import render_html, render_markdown
from pipeline.report.stage import summary_lines
from pipeline.report.thresholds import WeeklyConfig
from pipeline.report.weekly import compare, render_weekly_markdown


def _tasks(ready_examples: int, triage_spend: float, other_spend: float, other_repetitive: bool) -> list[TaskFacts]:
    return [
        TaskFacts("task_01", "Ticket triage", 480_000, share=0.8, spend_usd=triage_spend, repetitiveness=0.9,
                  dataset_examples=ready_examples, eval_examples=min(300, ready_examples // 5), output_format="json"),
        TaskFacts("task_02", "Email drafts", 120_000, share=0.2, spend_usd=other_spend,
                  repetitiveness=0.8 if other_repetitive else 0.3, dataset_examples=150, eval_examples=30),
    ]


# Hand-worked, USD, guide defaults converted (one-time 80,000; infrastructure 2,000/month):
WORLDS: dict[str, Facts] = {
    # task_01 is 75% of spend and ready (4,000 examples): hybrid 10,000 x 0.325 + 2,000 = 5,250 -> saves
    # 4,750/month, break-even 16.8 months; ready share 75% >= 50%.
    "migrate": busy_facts(),
    # task_01 ready but only 25% of spend; task_02 (75%) is a candidate without examples: hybrid
    # 10,000 x 0.1 + 2,000 = 3,000 -> saves 7,000, break-even 11.4 months; ready share 25% < 50%.
    "pilot_fine_tune": busy_facts(task_types=_tasks(4_000, 3_000.0, 9_000.0, other_repetitive=True)),
    # Pays back (16.8 months) and the count holds, but no candidate type has 1,000 examples (400).
    "prepare_dataset": busy_facts(task_types=_tasks(400, 9_000.0, 3_000.0, other_repetitive=False)),
    # 1,000 USD/month with ideal caching: the hybrid costs more than it replaces and, flat, never repays;
    # ideal ordering caches 20% vs 10% as logged (+10 points >= 5).
    "fix_caching_first": busy_facts(monthly_ideal_caching_usd=1_000.0, monthly_run_rate_usd=1_200.0,
                                    weekly_growth_rate=0.0),
    # The same, with caching already at its best (as logged = ideal, no prefix breaker).
    "stay_with_caching": busy_facts(monthly_ideal_caching_usd=1_000.0, monthly_run_rate_usd=1_200.0,
                                    weekly_growth_rate=0.0, simulated_share={"as_logged": 0.2, "ideal": 0.2}),
    "insufficient_data": Facts(missing={"simulated_share": "audit/summary.json not found"}),
}


def test_every_decision_value_has_a_planted_world() -> None:
    assert set(WORLDS) == set(DECISIONS)


def rendered(report: dict) -> dict[str, str]:
    metrics = compare({}, {}, [], {}, {}, WeeklyConfig())
    week = {"start": "2026-09-24", "end": "2026-09-30", "start_ts": "2026-09-23T12:00:00+00:00",
            "end_ts": "2026-09-30T12:00:00+00:00"}
    weekly = {"this_week": week, "previous_week": week, "currency": "USD", "usd_to_currency": 1.0, "metrics": metrics,
              "decision": {k: report["verdict"][k] for k in ("decision", "title", "headline")},
              "regressions": [], "exit_code": 0, "task_shifts": [], "new_task_types": [], "task_mix": []}
    return {
        "md": render_markdown(report),
        "html": render_html(report),
        "cli": summary_lines(report, "out/report"),
        "json": json.dumps(report),
        "weekly": render_weekly_markdown(weekly),
    }


@pytest.mark.parametrize("value", list(WORLDS))
def test_all_outputs_state_the_one_decision(value: str) -> None:
    report = json.loads(json.dumps(build_report(WORLDS[value], USD), default=str))  # as report.json holds it
    assert report["verdict"]["decision"] == value
    title = DECISIONS[value]
    out = rendered(report)
    # report.md: one decision heading, and the framework section points at it instead of deciding.
    assert re.findall(r"^## Decision: (.+)$", out["md"], re.M) == [title]
    framework = out["md"].split("## Decision framework", 1)[1].split("\n## ", 1)[0]
    assert f"(**{title}**)" in framework and "Recommendation" not in framework
    # report.html: the banner's class, data attribute and label; the framework paragraph names it.
    assert re.findall(r'<section class="verdict ([a-z_]+)" id="verdict" data-decision="([a-z_]+)"', out["html"]) == [
        (value, value)]
    assert re.findall(r'<div class="label">Decision — (.+?)</div>', out["html"]) == [title]
    assert f"above (<b>{title}</b>)" in out["html"]
    # CLI: one decision line; the framework line is evidence, not a verdict.
    assert re.findall(r"^  decision: (.+?) \(([a-z_]+)\):", out["cli"], re.M) == [(title.upper(), value)]
    assert "evidence:" in out["cli"] and "plan the migration" not in out["cli"]
    # weekly.md renders the report's object.
    assert re.findall(r"\*\*decision\*\*: (.+?) \(([a-z_]+)\)", out["weekly"]) == [(title.upper(), value)]
    # No output names any other decision's title as its verdict.
    for other, other_title in DECISIONS.items():
        if other != value:
            assert f"Decision: {other_title}\n" not in out["md"] and f"Decision — {other_title}<" not in out["html"]
    # The actions are consistent with the decision.
    actions = report["verdict"]["actions"]
    if value in ("migrate", "pilot_fine_tune"):
        assert actions["fine_tune"] == ["task_01"]
    else:
        assert actions["fine_tune"] == []
    if value in ("fix_caching_first", "stay_with_caching", "insufficient_data"):
        assert actions["build_dataset"] == []


@pytest.mark.parametrize("value", list(WORLDS))
def test_each_planted_world_decides_its_value(value: str) -> None:
    """The decision and its actions for each planted world, without rendering (`make mutate` runs this
    per mutant; the rendering test above checks every output states the same)."""
    verdict = build_report(WORLDS[value], USD)["verdict"]
    assert (verdict["decision"], verdict["title"]) == (value, DECISIONS[value])
    actions = verdict["actions"]
    assert actions["fine_tune"] == (["task_01"] if value in ("migrate", "pilot_fine_tune") else [])
    if value in ("fix_caching_first", "stay_with_caching", "insufficient_data"):
        assert actions["build_dataset"] == []


def test_pilot_and_prepare_name_their_tasks() -> None:
    pilot = build_report(WORLDS["pilot_fine_tune"], USD)
    assert pilot["cost"]["break_even_months"] == 11.4
    assert pilot["verdict"]["actions"]["build_dataset"] == ["task_02"]
    prepare = build_report(WORLDS["prepare_dataset"], USD)
    assert prepare["verdict"]["actions"]["build_dataset"] == ["task_01"]
    assert prepare["verdict"]["decided_by"] == "ready"


def test_migrate_share_limit_both_sides() -> None:
    # Ready share exactly 50% migrates; just under pilots.
    half = busy_facts(task_types=_tasks(4_000, 6_000.0, 6_000.0, other_repetitive=True))
    assert build_report(half, USD)["verdict"]["decision"] == "migrate"
    under = busy_facts(task_types=_tasks(4_000, 5_999.0, 6_001.0, other_repetitive=True))
    assert build_report(under, USD)["verdict"]["decision"] == "pilot_fine_tune"


def test_payback_horizon_both_sides() -> None:
    # Break-even 24.0 months is within the 24-month horizon; just beyond it is not.
    # savings = 10,000 x 0.675 - 2,000 = 4,750; one-time 114,000 -> 24.0 months; 114,100 -> 24.02.
    at = build_report(busy_facts(weekly_growth_rate=0.0), dataclasses.replace(USD, fine_tune_one_time_cost=114_000.0))
    assert at["cost"]["break_even_months"] == 24.0 and at["verdict"]["decision"] == "migrate"
    beyond = build_report(busy_facts(weekly_growth_rate=0.0),
                          dataclasses.replace(USD, fine_tune_one_time_cost=114_100.0))
    assert beyond["verdict"]["decision"] != "migrate"
