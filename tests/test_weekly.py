"""`logaudit weekly`: the week-over-week comparison, its limits and the exit code a cron job reads."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.report.thresholds import WeeklyConfig
from pipeline.report.weekly import EXIT_OK, EXIT_REGRESSIONS, compare, task_shifts, weekly_report

ALL = {"request_costs": True, "request_labels": True, "lineage": True}


def traffic(this: int, prev: int, spend_this: float = 1.0, spend_prev: float = 1.0) -> dict:
    return {
        "this": {"requests": this, "priced_requests": this, "spend_usd": spend_this, "cache_read_tokens": 500,
                 "input_tokens": 1000},
        "prev": {"requests": prev, "priced_requests": prev, "spend_usd": spend_prev, "cache_read_tokens": 500,
                 "input_tokens": 1000},
    }


def labels(regen_this: int = 2, regen_prev: int = 2) -> dict:
    row = {"requests": 100, "answered": 100, "edited": 1, "feedback": 10, "negative_feedback": 1, "clean_examples": 90}
    return {"this": {**row, "regenerated": regen_this}, "prev": {**row, "regenerated": regen_prev}}


MIX = [
    {"task_type": "task_01", "task_label": "a", "this_requests": 60, "prev_requests": 60, "new_this_week": False},
    {"task_type": "task_02", "task_label": "b", "this_requests": 40, "prev_requests": 40, "new_this_week": False},
]
DATASET = {"this": {"examples": 80, "duplicates": 2, "requests": 100}, "prev": {"examples": 80, "duplicates": 2, "requests": 100}}


def flagged(metrics: list[dict]) -> set[str]:
    return {m["id"] for m in metrics if m["regression"]}


def status(metrics: list[dict], mid: str) -> str:
    return next(m["status"] for m in metrics if m["id"] == mid)


def test_a_steady_week_has_no_regression() -> None:
    assert flagged(compare(traffic(100, 100), labels(), MIX, DATASET, ALL, WeeklyConfig())) == set()


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"traffic": traffic(50, 100, spend_this=0.5)}, {"volume"}),  # -50% < -30%, same spend per request
        ({"traffic": traffic(100, 100, spend_this=1.5)}, {"spend_per_request"}),  # +50% > +25%
        ({"labels": labels(regen_this=6)}, {"regeneration_rate"}),  # 2% -> 6% is +200% > +25%
        ({"dataset": {**DATASET, "this": {"examples": 80, "duplicates": 10, "requests": 100}}}, {"duplicate_rate"}),
    ],
)
def test_each_limit_flags_its_regression(kwargs: dict, expected: set[str]) -> None:
    args = {"traffic": traffic(100, 100), "labels": labels(), "mix": MIX, "dataset": DATASET, **kwargs}
    metrics = compare(args["traffic"], args["labels"], args["mix"], args["dataset"], ALL, WeeklyConfig())
    assert flagged(metrics) == expected


def test_relative_limits_on_both_sides() -> None:
    # Regeneration 4.0% -> 5.0% is +25.0%: at the limit, not beyond; 4.0% -> 5.1% (+27.5%) regresses.
    def regen(this: int, prev: int) -> list[dict]:
        rows = {"this": {**labels()["this"], "answered": 1000, "regenerated": this},
                "prev": {**labels()["prev"], "answered": 1000, "regenerated": prev}}
        return compare(traffic(100, 100), rows, MIX, DATASET, ALL, WeeklyConfig())

    assert status(regen(50, 40), "regeneration_rate") == "ok"
    assert status(regen(51, 40), "regeneration_rate") == "regression"
    assert status(regen(30, 40), "regeneration_rate") == "improved"
    # Volume: -30% is at the limit, -31% beyond it.
    assert "volume" not in flagged(compare(traffic(70, 100, 0.7), labels(), MIX, DATASET, ALL, WeeklyConfig()))
    assert "volume" in flagged(compare(traffic(69, 100, 0.69), labels(), MIX, DATASET, ALL, WeeklyConfig()))


def test_an_improvement_above_the_absolute_limit_is_not_a_regression() -> None:
    # The observed case: duplicates 6.0% this week, 7.2% the week before: better, though above 5%.
    dataset = {"this": {"examples": 470, "duplicates": 30, "requests": 600},
               "prev": {"examples": 464, "duplicates": 36, "requests": 600}}
    metrics = compare(traffic(100, 100), labels(), MIX, dataset, ALL, WeeklyConfig())
    dup = next(m for m in metrics if m["id"] == "duplicate_rate")
    assert dup["this_week"] == 0.06 and dup["previous_week"] == 0.072
    assert dup["regression"] is False and dup["above_limit"] is True and dup["status"] == "above limit"
    assert dup["display"] == "6.0% of 500 candidates (30) vs 7.2% of 500 candidates (36), -17%"


def test_rates_on_tiny_bases_are_not_judged() -> None:
    # Negative feedback 1 of 3 rated vs 1 of 9: 33.3% vs 11.1% is noise, shown with its counts.
    rows = {"this": {**labels()["this"], "feedback": 3, "negative_feedback": 1},
            "prev": {**labels()["prev"], "feedback": 9, "negative_feedback": 1}}
    metrics = compare(traffic(100, 100), rows, MIX, DATASET, ALL, WeeklyConfig())
    neg = next(m for m in metrics if m["id"] == "negative_feedback_rate")
    assert neg["status"] == "too few to judge" and not neg["regression"]
    assert "33.3% of 3 rated (1)" in neg["display"] and "11.1% of 9 rated (1)" in neg["display"]


def test_mix_shifts_and_per_task_volume_are_shown_not_regressions() -> None:
    moved = [{**MIX[0], "this_requests": 90}, {**MIX[1], "this_requests": 10}]
    metrics = compare(traffic(100, 100), labels(), moved, DATASET, ALL, WeeklyConfig())
    assert status(metrics, "task_mix") == "shift" and not flagged(metrics)
    new = [*MIX, {"task_type": "task_03", "task_label": "c", "this_requests": 10, "prev_requests": 0, "new_this_week": True}]
    assert status(compare(traffic(100, 100), labels(), new, DATASET, ALL, WeeklyConfig()), "new_task_types") == "shift"
    # task_01 falling from 146 to 89 requests (-39%) is flagged; -30% exactly is not.
    mix = [{**MIX[0], "this_requests": 89, "prev_requests": 146}, {**MIX[1], "this_requests": 70, "prev_requests": 100}]
    shifts = task_shifts(mix, WeeklyConfig())
    assert [t["task_type"] for t in shifts] == ["task_01"]
    assert shifts[0]["display"].startswith("146 → 89 requests (-39%")


def test_missing_tables_are_not_measured_not_regressions() -> None:
    metrics = compare(traffic(100, 100), {}, [], {}, {"request_costs": False, "request_labels": False,
                                                     "lineage": False}, WeeklyConfig())
    by_id = {m["id"]: m for m in metrics}
    assert not flagged(metrics)
    assert by_id["volume"]["measured"] and not by_id["regeneration_rate"]["measured"]
    assert "not found" in by_id["spend"]["display"]


@pytest.fixture(scope="module")
def weekly(sample_run):
    return weekly_report(sample_run.workdir)


def test_weekly_over_the_sample_matches_truth(weekly, sample_logs_dir: Path) -> None:
    with gzip.open(sample_logs_dir / "truth_requests.jsonl.gz", "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    stamps = [datetime.fromisoformat(r["ts"].replace("Z", "+00:00")) for r in rows]
    end = datetime.fromisoformat(weekly.weekly["this_week"]["end_ts"])
    assert weekly.weekly["this_week"]["end"] == end.date().isoformat()  # dates for people
    assert end == max(stamps) or abs((end - max(stamps)).total_seconds()) < 1
    this = sum(end - timedelta(days=7) < t <= end for t in stamps)
    prev = sum(end - timedelta(days=14) < t <= end - timedelta(days=7) for t in stamps)
    volume = next(m for m in weekly.weekly["metrics"] if m["id"] == "volume")
    # Bad records kept by the ingest carry their own timestamps: allow those few.
    assert abs(volume["this_week"] - this) <= 2 and abs(volume["previous_week"] - prev) <= 2
    # Task-mix shift against the generator's task types over the same two windows.
    this_mix = Counter(r["task_type"] for r, t in zip(rows, stamps, strict=True) if end - timedelta(days=7) < t <= end)
    prev_mix = Counter(r["task_type"] for r, t in zip(rows, stamps, strict=True)
                       if end - timedelta(days=14) < t <= end - timedelta(days=7))
    tv = 0.5 * sum(abs(this_mix[k] / sum(this_mix.values()) - prev_mix[k] / sum(prev_mix.values()))
                   for k in set(this_mix) | set(prev_mix))
    mix = next(m for m in weekly.weekly["metrics"] if m["id"] == "task_mix")
    assert mix["this_week"] == pytest.approx(tv, abs=0.02)
    assert mix["shift"] is (mix["this_week"] > WeeklyConfig().max_task_mix_distance) and not mix["regression"]
    assert (weekly.out_dir / "weekly.md").is_file() and (weekly.out_dir / "weekly.json").is_file()
    assert weekly.exit_code == (EXIT_REGRESSIONS if weekly.regressions else EXIT_OK)


def test_cli_exit_code_for_cron(sample_run, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["weekly", str(sample_run.workdir)])
    on_disk = json.loads((sample_run.workdir / "report" / "weekly.json").read_text(encoding="utf-8"))
    assert result.exit_code == on_disk["exit_code"] in (EXIT_OK, EXIT_REGRESSIONS)
    # Any volume change at all is a regression under this limit: the job must exit 3.
    strict = tmp_path / "strict.toml"
    strict.write_text("[weekly]\nmax_volume_drop = -1.0\nmax_volume_rise = -1.0\n", encoding="utf-8")
    result = runner.invoke(cli, ["weekly", str(sample_run.workdir), "--config", str(strict)])
    assert result.exit_code == EXIT_REGRESSIONS, result.output
    assert "REGRESSION" in result.output and "Requests" in result.output


def test_money_is_in_the_reporting_currency() -> None:
    metrics = compare(traffic(100, 100, spend_this=2.0, spend_prev=1.0), labels(), MIX, DATASET, ALL, WeeklyConfig(),
                      currency="AUD", usd_to_currency=1.5)
    spend = next(m for m in metrics if m["id"] == "spend")
    assert spend["name"] == "Spend (AUD, the week's total)"
    assert spend["this_week"] == 3.0 and spend["previous_week"] == 1.5
    per_request = next(m for m in metrics if m["id"] == "spend_per_request")
    assert per_request["this_week"] == 0.03 and per_request["regression"]  # doubled: +100% > +25%
