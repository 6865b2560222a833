"""Stage 4: the report. Reads what ingest, audit and dataset wrote; never recomputes their figures.

`render_report(workdir, config)` writes `WORKDIR/report/{report.json, report.md, report.html}`:
the verdict (stay with caching and fix the prefix breakers, or plan a migration and for which task
types first), the five signs, the eight-factor framework with the "3 or more" rule, cost
projections with break-even, per-task-type migration ranking, cache findings and the data-quality
checklist. `weekly_report(workdir, config)` compares the last 7 days with the 7 before.

Every threshold is a `ReportConfig` default (`thresholds.py`), overridable from the `[report]` section
of a TOML file, and printed next to the value it was compared with.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import ReportError
from pipeline.report.decide import build_report
from pipeline.report.evaluations import evaluations, mixed_evaluations
from pipeline.report.inputs import read_facts
from pipeline.report.render import render_html, render_markdown
from pipeline.report.sanity import sanity_checks
from pipeline.report.thresholds import ReportConfig, WeeklyConfig, report_config
from pipeline.report.weekly import WeeklyResult, weekly_report
from pipeline.workdir import versions
from pipeline.workdir.lock import holds_writer_lock
from pipeline.workdir.paths import workdir_paths
from pipeline.workdir.store import store_identity

__all__ = ["ReportConfig", "ReportResult", "WeeklyConfig", "WeeklyResult", "render_report", "weekly_report"]


@dataclass(frozen=True)
class ReportResult:
    out_dir: Path
    report: dict[str, Any]

    @property
    def paths(self) -> dict[str, Path]:
        return {ext: self.out_dir / f"report.{ext}" for ext in ("md", "html", "json")}

    def summary(self) -> str:
        return summary_lines(self.report, self.out_dir)


def summary_lines(r: dict[str, Any], out_dir: Path | str) -> str:
    """The CLI's lines: the one decision first, then the evidence beside it (never a second verdict)."""
    v = r["verdict"]
    cost = r["cost"]
    lines = [f"Report written to {out_dir}/ (report.md, report.html, report.json)",
             f"  decision: {v['title'].upper()} ({v['decision']}): {v['headline']}"]
    for name, ids in v["actions"].items():
        if ids and name != "keep_on_api":
            lines.append(f"    {name.replace('_', ' ')}: {', '.join(ids)}")
    lines.append(f"  money in {cost['currency']} (USD x {cost['usd_to_currency']}): window total "
                 f"{_money(cost['window_total'])} over {r['window']['days'] or '—'} days; monthly run-rate "
                 f"{_money(cost['monthly_run_rate'])}")
    for s in r["signs"]:
        lines.append(f"  sign {s['id']} {s['state']:<12} {s['name']}")
    fw = r["framework"]
    lines.append(f"  evidence: {fw['switch_count']}/8 factors in the switch column ({fw['switch_min']} or more meets the "
                 f"rule), {fw['stay_count']} stay, {fw['unknown_count']} undecided")
    if r["not_measured"]:
        lines.append(f"  not measured: {len(r['not_measured'])} figure(s), listed in the report")
    warnings = (r.get("sanity") or {}).get("warnings") or []
    if warnings:
        lines.append(f"  sanity: {len(warnings)} warning(s) (implausible tokens, timestamps or costs), listed in the report")
    return "\n".join(lines)


def _money(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f}"


@holds_writer_lock
def render_report(
    workdir: Path, config: dict[str, Any] | ReportConfig | None = None, *, allow_mixed_versions: bool = False
) -> ReportResult:
    """Read the stages' outputs under `workdir` and write the report in three formats.

    Args:
        workdir: the working directory every stage wrote into.
        config: the parsed `--config` TOML (its `[report]` section is used) or a `ReportConfig`.
        allow_mixed_versions: report even when the audit and dataset were computed from different
            store versions (otherwise a ReportError says what to rerun).
    """
    workdir = Path(workdir)
    cfg = report_config(config)
    store = store_identity(workdir)
    check_versions(workdir, store, ("audit", "dataset"), allow_mixed_versions, with_evaluations=True)
    facts = read_facts(workdir, cfg)
    if not facts.sources.get("store") and not facts.sources.get("audit_summary"):
        raise ReportError(
            f"Nothing to report in `{workdir}`: no ingested requests and no audit. "
            f"Run `logaudit run LOGS --out {workdir}` first."
        )
    report = build_report(facts, cfg)
    # Every candidate `logaudit eval` scored (WORKDIR/eval/*/summary.json), in its own section.
    report["evaluations"], unread = evaluations(workdir, report["task_types"])
    report["not_measured"].update(unread)
    report["sanity"] = sanity_checks(workdir, cfg)
    if report["sanity"]["window"] is not None:  # implausible timestamps: show the trimmed window
        report["window_untrimmed"], report["window"] = report["window"], report["sanity"]["window"]
    # The three files switch together as one new version: a run killed half way leaves the previous
    # report whole. The weekly files (written by `logaudit weekly`) are carried over.
    with versions.building(workdir, "report", store=store, carry=WEEKLY_FILES) as build:
        _write(build / "report.json", json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
        _write(build / "report.md", render_markdown(report, cfg.max_task_types))
        _write(build / "report.html", render_html(report, cfg.max_task_types))
    return ReportResult(workdir_paths(workdir).view("report"), report)


REPORT_FILES = ("report.json", "report.md", "report.html")
WEEKLY_FILES = ("weekly.json", "weekly.md")


def check_versions(workdir: Path, store: dict[str, Any], stages: tuple[str, ...], allow: bool,
                   with_evaluations: bool = False) -> None:
    """Refuse outputs computed from different store versions (an audit of v7 beside a dataset of v6),
    and (`with_evaluations`) candidates scored on another eval split than the dataset's."""
    problems = versions.mismatched_inputs(workdir, store, stages)
    if with_evaluations:
        problems += mixed_evaluations(workdir)
    if problems and not allow:
        raise ReportError(
            "Inputs from different versions: " + "; ".join(problems)
            + ". Or pass --allow-mixed-versions to report them anyway."
        )


def _write(path: Path, text: str) -> None:
    # Write then rename, so a reader (or a browser refresh) never sees half a report.
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    versions.pause_point(path)


# The uniform stage name (`pipeline.report(workdir, config)`); `render_report` stays for callers.
report = render_report
