"""The report's eval section: every candidate `logaudit eval` scored (`WORKDIR/eval/*/summary.json`,
`schemas/eval.py`), per task type its score, interval, delta and decision beside the savings the
report computed for that task.

Kept apart from the rest of the report: `render_report` calls `evaluations()` for report.json and
the two renderers call `section_markdown()` / `section_html()`, each with its own template
(`eval_section.md`, `eval_section.html`). A candidate scored before the dataset was rebuilt (the
eval-split identity it recorded differs from the current one, `eval_split_identity`) is marked stale,
and the report refuses it unless told to mix versions (`mixed_evaluations`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from pipeline.workdir.paths import eval_split_identity, workdir_paths
from pipeline.workdir.versions import stage_version_name


def evaluations(workdir: Path, task_rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """(one entry per candidate, {figure: reason} for summaries that could not be read)."""
    by_id = {t.get("id"): t for t in task_rows}
    out: list[dict[str, Any]] = []
    problems: dict[str, str] = {}
    summaries = sorted(workdir_paths(workdir).eval_dir.glob("*/summary.json"))
    current = eval_split_identity(workdir) if summaries else None
    for path in summaries:
        try:
            s = json.loads(path.read_text(encoding="utf-8"))
            tasks = s["tasks"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
            problems[f"eval:{path.parent.name}"] = f"`{path}` could not be read ({type(e).__name__}: {e})"
            continue
        source = s.get("source") or {}
        out.append({
            "candidate": s.get("candidate", path.parent.name),
            "source": source.get("kind"),
            "model": source.get("model"),
            "baseline": s.get("baseline"),
            "overall_score": (s.get("overall") or {}).get("score"),
            "routed_request_share": (s.get("routing") or {}).get("routed_request_share"),
            # Scored on another eval split than the dataset holds now (rebuilt since): re-run it.
            "stale": current is not None and (s.get("inputs") or {}).get("eval_split_identity") != current,
            "tasks": [{
                "task_type": t["task_type"], "label": t.get("label"), "kind": t.get("kind"), "n": t.get("n"),
                "score": t.get("score"), "ci_low": t.get("ci_low"), "ci_high": t.get("ci_high"),
                "delta": t.get("delta"), "margin": t.get("margin"), "decision": t.get("decision"),
                "uncertain": bool(t.get("uncertain")), "reason": t.get("reason"),
                "not_routed_because": t.get("not_routed_because"),
                "monthly_spend": by_id.get(t["task_type"], {}).get("monthly_spend"),
                "projected_monthly_savings": by_id.get(t["task_type"], {}).get("projected_monthly_savings"),
            } for t in tasks],
        })
    return out, problems


def mixed_evaluations(workdir: Path) -> list[str]:
    """Why candidates cannot be reported beside the current dataset: each scored on another eval
    split (a dataset rebuilt since with other examples or answers; a rebuild giving the same split
    changes nothing). Unreadable summaries are left to `evaluations()`."""
    summaries = sorted(workdir_paths(workdir).eval_dir.glob("*/summary.json"))
    current = eval_split_identity(workdir) if summaries else None
    if current is None:
        return []
    now = stage_version_name(workdir, "dataset") or "the current dataset"
    problems = []
    for path in summaries:
        try:
            inputs = json.loads(path.read_text(encoding="utf-8")).get("inputs") or {}
        except (OSError, ValueError, AttributeError):
            continue
        if inputs.get("eval_split_identity") != current:
            scored_on = f"dataset {inputs['dataset_version']}" if inputs.get("dataset_version") else "an earlier dataset"
            problems.append(f"`eval/{path.parent.name}` was scored on the eval split of {scored_on}, the dataset is now "
                            f"{now} (rerun `logaudit eval {workdir} --candidate {path.parent.name} …`)")
    return problems


def section_markdown(evals: list[dict[str, Any]], money: Callable[[Any], str], escape: Callable[[str], str]) -> str:
    return _render("eval_section.md", False, evals, money, escape)


def section_html(evals: list[dict[str, Any]], money: Callable[[Any], str]) -> str:
    return _render("eval_section.html", True, evals, money, str)


def _render(name: str, autoescape: bool, evals: list[dict[str, Any]], money: Callable[[Any], str],
            escape: Callable[[str], str]) -> str:
    import jinja2

    env = jinja2.Environment(autoescape=autoescape, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["e_md"] = lambda v: "—" if v is None else escape(str(v))
    env.filters["f3"] = lambda v: "—" if v is None else f"{v:.3f}"
    env.filters["signed"] = lambda v: "—" if v is None else f"{v:+.3f}"
    env.filters["money"] = money
    env.filters["pct"] = lambda v: "—" if v is None else f"{v:.1%}"
    text = resources.files("pipeline.report").joinpath(name).read_text(encoding="utf-8")
    return env.from_string(text).render(evals=evals)


