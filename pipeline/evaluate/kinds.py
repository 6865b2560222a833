"""Which scorer a task type gets: from the config, else from what the audit measured of its
answers (`audit/task_types.parquet`: JSON and tool-call rates), else from the eval references."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError
from pipeline.evaluate.config import EvalConfig
from pipeline.evaluate.examples import EvalExample
from pipeline.evaluate.scoring import KINDS, extract_sql, normalize_label, normalize_sql, parse_json
from pipeline.evaluate.sqlfiles import fetch
from pipeline.workdir.paths import workdir_paths


@dataclass(frozen=True)
class TaskKind:
    kind: str
    basis: str
    """Why: `config`, `audit: …` or `eval references: …`."""


def audit_profile(workdir: Path) -> dict[str, dict[str, Any]]:
    """The audit's task_types rows by task type ({} when the audit did not run)."""
    path = workdir_paths(workdir).audit_table("task_types")
    if not path.is_file():
        return {}
    return {r["task_type"]: r for r in fetch("task_profile", task_types=str(path))}


def infer_kinds(examples: Sequence[EvalExample], profile: dict[str, dict[str, Any]], cfg: EvalConfig) -> dict[str, TaskKind]:
    by_task: dict[str, list[EvalExample]] = {}
    for ex in examples:
        by_task.setdefault(ex.task_type, []).append(ex)
    return {task: infer_kind(task, exs, profile.get(task), cfg) for task, exs in sorted(by_task.items())}


def infer_kind(task: str, examples: Sequence[EvalExample], audit: dict[str, Any] | None, cfg: EvalConfig) -> TaskKind:
    override = cfg.task(task).get("kind")
    if override is not None:
        if override not in KINDS:
            raise ConfigError(f"[eval.tasks.{task}] kind = {override!r}; use one of {', '.join(KINDS)}.")
        return TaskKind(override, "config")
    texts = [ex.reference.content or "" for ex in examples if not ex.reference.tool_calls]
    tool_share = 1 - len(texts) / len(examples) if examples else 0.0
    json_rate = _rate(audit, "json_output_rate")
    if json_rate is not None and json_rate >= cfg.json_min_share:
        return TaskKind("json", f"audit: {json_rate:.0%} of answers are JSON")
    tool_rate = _rate(audit, "tool_call_rate")
    if tool_rate is not None and tool_rate >= cfg.tool_call_min_share:
        return TaskKind("tool_call", f"audit: {tool_rate:.0%} of answers are tool calls")
    if not texts or tool_share >= cfg.tool_call_min_share:
        return TaskKind("tool_call", f"eval references: {tool_share:.0%} are tool calls")
    if audit is None:
        json_share = sum(parse_json(t) is not None for t in texts) / len(texts)
        if json_share >= cfg.json_min_share:
            return TaskKind("json", f"eval references: {json_share:.0%} are JSON")
    dialect = cfg.task(task).get("sql_dialect") or cfg.sql_dialect or None
    sql_share = sum(_is_sql(t, dialect) for t in texts) / len(texts)
    if sql_share >= cfg.sql_min_share:
        return TaskKind("sql", f"eval references: {sql_share:.0%} hold a parseable SQL statement")
    labels = [normalize_label(t) for t in texts]
    short = sum(0 < len(label.split()) <= cfg.classification_max_words for label in labels) / len(labels)
    distinct = len(set(labels))
    if (short >= cfg.classification_min_share and distinct <= cfg.classification_max_labels
            and distinct * 2 <= len(labels)):
        return TaskKind("classification", f"eval references: {short:.0%} are short labels, {distinct} distinct")
    return TaskKind("text", "free text (no JSON, SQL, tool-call or label pattern)")


def _rate(audit: dict[str, Any] | None, key: str) -> float | None:
    value = (audit or {}).get(key)
    return float(value) if value is not None else None


def _is_sql(text: str, dialect: str | None) -> bool:
    sql = extract_sql(text)
    return sql is not None and normalize_sql(sql, dialect) is not None
