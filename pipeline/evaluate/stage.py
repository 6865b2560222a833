"""Stage 5: does a candidate model match production on the held-out eval split, task by task?

    WORKDIR/dataset/{lineage.parquet, eval.jsonl} + a candidate's answers (--predictions FILE, or
    --endpoint URL --model M) --score per task kind--> WORKDIR/eval/<candidate>/{scores.parquet,
    summary.json, eval.md, routing.json, litellm_router.yaml} (+ answers.jsonl, the endpoint cache)

Every candidate's folder and `prompts.jsonl` form one versioned unit (`pipeline/workdir/versions.py`),
like every stage output: an eval holds the WORKDIR writer lock, builds the next version (its
candidate's folder new, the rest carried by hard links) and switches with one pointer replace, so a
killed run leaves the previous evaluations whole. Each summary names the dataset and store versions
it was scored on; the report refuses a candidate scored on another eval split than the current one.
The endpoint answer cache lives beside the versions (`WorkdirPaths.eval_answers`), so a killed run
resumes.

`evaluate(workdir, candidate, ...)` is the API; `logaudit eval` calls it. The reference of every
example is the production answer in the eval split; the task type is the audit's (from the
dataset's lineage), and how each type is scored comes from the config, else from what the audit
measured of its answers, else from the references (`kinds.py`). Per task: score, 95% bootstrap
interval, n, the delta to production (or to a `--baseline` candidate) and the decision
(`stats.decide`). `export_prompts(workdir)` writes the eval prompts with their ids for an
inference stack to answer.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import EvalError
from pipeline.evaluate.config import EvalConfig
from pipeline.evaluate.examples import Answer, EvalExample, EvalSplit, read_eval_split
from pipeline.evaluate.kinds import TaskKind, audit_profile, infer_kinds
from pipeline.evaluate.routing import litellm_router_yaml, routing_table, task_fingerprints
from pipeline.evaluate.scoring import score_answer
from pipeline.evaluate.stats import decide, interval
from pipeline.workdir import versions
from pipeline.workdir.lock import holds_writer_lock
from pipeline.workdir.paths import eval_split_identity, workdir_paths
from pipeline.workdir.store import store_identity
from schemas.eval import EVAL_SCHEMA_VERSION, SCORES_SCHEMA

CANDIDATE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class EvalResult:
    out_dir: Path
    summary: dict[str, Any]

    def summary_text(self) -> str:
        s = self.summary
        ex = s["examples"]
        lines = [f"Eval of `{s['candidate']}` written to {self.out_dir}/ (scores.parquet, summary.json, eval.md, "
                 f"routing.json, litellm_router.yaml)",
                 f"  examples: {ex['total']} ({ex['answered']} answered, {ex['missing']} missing, "
                 f"{ex['unscorable']} unscorable references)"]
        if s["source"]["kind"] == "endpoint":
            lines.append(f"  endpoint: {s['source']['asked']} asked, {s['source']['cached']} from the cache, "
                         f"{s['source']['http_requests']} HTTP requests")
        for t in s["tasks"]:
            score = "—" if t["score"] is None else f"{t['score']:.3f} [{t['ci_low']:.3f}, {t['ci_high']:.3f}]"
            delta = "—" if t["delta"] is None else f"{t['delta']:+.3f}"
            lines.append(f"  {t['task_type']:<10} {t['kind']:<14} n {t['n']:>4}  score {score}  delta {delta}  "
                         f"-> {t['decision']}{' (uncertain)' if t['uncertain'] else ''}")
        r = s["routing"]
        lines.append(f"  routing: {len(r['candidate_tasks'])} task type(s) to the candidate, {len(r['api_tasks'])} to the API")
        return "\n".join(lines)


@holds_writer_lock
def evaluate(
    workdir: Path,
    candidate: str,
    *,
    predictions: Path | None = None,
    endpoint: str | None = None,
    model: str | None = None,
    baseline: str | None = None,
    config: EvalConfig | dict[str, Any] | None = None,
    on_answer: Callable[[int, int], None] | None = None,
) -> EvalResult:
    """Score `candidate` on the eval split of `workdir` and write `WORKDIR/eval/<candidate>/`.

    Args:
        predictions: a JSONL of `{id, answer | messages}` (see predictions.py).
        endpoint: an OpenAI-compatible base URL (`http://host:8000/v1`); needs `model`.
        baseline: an already evaluated candidate (e.g. the production model re-asked) whose
            per-task scores are production's level; default: `[eval.baselines]` per kind.
        on_answer: endpoint progress, called with (answered, to ask).
    """
    cfg = config if isinstance(config, EvalConfig) else EvalConfig.from_toml(config)
    workdir = Path(workdir)
    if not CANDIDATE_NAME.match(candidate or "") or candidate == "prompts.jsonl":
        raise EvalError(f"Candidate name `{candidate}` must be 1-100 letters, digits, `.`, `_` or `-` "
                        "(it names the folder WORKDIR/eval/<candidate>/).")
    if (predictions is None) == (endpoint is None):
        raise EvalError("Give exactly one of --predictions FILE or --endpoint URL (with --model).")
    if endpoint is not None and not model:
        raise EvalError("--endpoint needs --model (the model name the endpoint serves).")
    if baseline is not None and baseline == candidate:
        raise EvalError("--baseline must name another candidate.")
    split = read_eval_split(workdir)
    store = store_identity(workdir)
    _migrate_answer_caches(workdir)
    answers, source = _answers(split, workdir, candidate, predictions, endpoint, model, cfg, on_answer)

    profile = audit_profile(workdir)
    kinds = infer_kinds(split.examples, profile, cfg)
    rows = score_rows(candidate, split.examples, answers, kinds, cfg)

    base_scores = _baseline_scores(workdir, baseline) if baseline else None
    tasks = task_results(rows, kinds, profile, cfg, base_scores, baseline)
    models = {t: list(p.get("models") or []) for t, p in profile.items()}
    table = routing_table(candidate, model, tasks, task_fingerprints(workdir), models)
    routed = {r["task_type"] for r in table["routes"] if r["target"] == "candidate"}
    route_reasons = {r["task_type"]: r["reason"] for r in table["routes"]}
    for t in tasks:
        t["routed"] = t["task_type"] in routed
        if t["decision"] == "candidate" and not t["routed"]:
            t["not_routed_because"] = route_reasons[t["task_type"]]
    scored = np.array([r["score"] for r in rows if r["score"] is not None], dtype=float)
    low, high = interval(scored, cfg.bootstrap_samples, cfg.seed)
    summary = {
        "schema_version": EVAL_SCHEMA_VERSION,
        "candidate": candidate,
        "source": source,
        "baseline": baseline,
        "examples": {
            "total": len(rows), "answered": sum(r["answered"] for r in rows),
            "missing": sum(not r["answered"] for r in rows), "unscorable": sum(r["score"] is None for r in rows),
        },
        "tasks": tasks,
        "overall": {"n": int(len(scored)), "score": float(scored.mean()) if len(scored) else None,
                    "ci_low": low, "ci_high": high},
        "routing": {
            "candidate_tasks": sorted(routed),
            "api_tasks": sorted(t["task_type"] for t in tasks if t["task_type"] not in routed),
            "routed_request_share": _routed_share(profile, routed),
        },
        "config": cfg.as_dict(),
        "inputs": {"eval_split_sha256": split.fingerprint, "format": split.format,
                   "eval_split_identity": eval_split_identity(workdir),
                   "dataset_version": versions.stage_version_name(workdir, "dataset"), "store_version": store["version"]},
    }
    # Written only now (a rejected predictions file leaves nothing behind), as a new version.
    with _new_eval_version(workdir, store, replacing=candidate) as build:
        out = build / candidate
        out.mkdir()
        _write_parquet(out / "scores.parquet", pa.Table.from_pylist(rows, schema=SCORES_SCHEMA))
        _write_text(out / "routing.json", json.dumps(table, indent=2, ensure_ascii=False) + "\n")
        _write_text(out / "litellm_router.yaml", litellm_router_yaml(table))
        _write_text(out / "summary.json", json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
        _write_text(out / "eval.md", render_markdown(summary))
    return EvalResult(workdir_paths(workdir).view("eval") / candidate, summary)


@contextlib.contextmanager
def _new_eval_version(workdir: Path, store: dict[str, Any], replacing: str) -> Iterator[Path]:
    """The next version of `WORKDIR/eval`: `replacing` (a candidate folder or prompts.jsonl) is the
    caller's to write; every other entry of the current version is carried over."""
    current = workdir_paths(workdir).eval_dir
    with versions.building(workdir, "eval", store=store,
                           inputs={"dataset": versions.stage_version_name(workdir, "dataset")}) as build:
        versions.carry_entries(current, build, skip=(replacing,))
        yield build


def _migrate_answer_caches(workdir: Path) -> None:
    """Move the endpoint answer caches of a WORKDIR from before versioned evals
    (`WORKDIR/eval/<candidate>/answers.jsonl`) to where they are kept now."""
    legacy = workdir_paths(workdir).view("eval")
    if not legacy.is_dir() or legacy.is_symlink():
        return
    for cache in legacy.glob("*/answers.jsonl"):
        target = workdir_paths(workdir).eval_answers(cache.parent.name)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(cache, target)


@holds_writer_lock
def export_prompts(workdir: Path) -> Path:
    """`WORKDIR/eval/prompts.jsonl`: `{id, task_type, messages, tools?}` per eval example, the input
    an inference stack answers to write a predictions file (`{id, answer}` per line)."""
    workdir = Path(workdir)
    split = read_eval_split(workdir)
    lines = []
    for ex in split.examples:
        record: dict[str, Any] = {"id": ex.example_id, "task_type": ex.task_type, "messages": ex.messages}
        if ex.tools:
            record["tools"] = ex.tools
        lines.append(json.dumps(record, ensure_ascii=False))
    with _new_eval_version(workdir, store_identity(workdir), replacing="prompts.jsonl") as build:
        _write_text(build / "prompts.jsonl", "\n".join(lines) + "\n")
    return workdir_paths(workdir).view("eval") / "prompts.jsonl"


# --- answers -------------------------------------------------------------------------------------


def _answers(split: EvalSplit, workdir: Path, candidate: str, predictions: Path | None, endpoint: str | None,
             model: str | None, cfg: EvalConfig, on_answer: Callable[[int, int], None] | None,
             ) -> tuple[dict[str, Answer], dict[str, Any]]:
    if predictions is not None:
        from pipeline.evaluate.predictions import read_predictions

        preds = read_predictions(predictions, split.examples)
        return preds.answers, {"kind": "predictions", "path": str(predictions), "unknown_ids": preds.unknown_count,
                               "unknown_id_examples": preds.unknown_ids}
    from pipeline.evaluate.endpoint import AnswerCache, ask_endpoint, chat_url

    assert endpoint is not None and model is not None  # checked by evaluate()
    cache = AnswerCache(workdir_paths(workdir).eval_answers(candidate), candidate, model).load()
    run = ask_endpoint(split.examples, endpoint, model, cache, cfg, on_answer)
    if run.failures:
        first_id, first_error = next(iter(run.failures.items()))
        raise EvalError(
            f"{len(run.failures)} of {len(split.examples)} examples got no answer from `{chat_url(endpoint)}` after "
            f"{cfg.max_attempts} attempts (e.g. `{first_id}`: {first_error}). The {len(run.answers)} answers so far are "
            f"cached in `{cache.path}`; re-run the same command to resume.")
    return run.answers, {"kind": "endpoint", "url": chat_url(endpoint), "model": model,
                         "api_key_env": cfg.api_key_env, "asked": run.asked, "cached": run.cached,
                         "http_requests": run.attempts}


# --- scoring and per-task figures ----------------------------------------------------------------


def score_rows(candidate: str, examples: list[EvalExample], answers: dict[str, Answer], kinds: dict[str, TaskKind],
               cfg: EvalConfig) -> list[dict[str, Any]]:
    rows = []
    for ex in examples:
        kind = kinds[ex.task_type].kind
        options = cfg.task(ex.task_type)
        options.setdefault("sql_dialect", cfg.sql_dialect or None)
        answer = answers.get(ex.example_id)
        scorer, score = score_answer(kind, ex.reference, answer or Answer(None), options)
        value, detail = score.score, score.detail
        if answer is None and value is not None:
            value, detail = 0.0, "missing_prediction"
        rows.append({
            "candidate": candidate, "example_id": ex.example_id, "request_id": ex.request_id,
            "task_type": ex.task_type, "kind": kind, "scorer": scorer, "answered": answer is not None,
            "score": value, "detail": detail, "json_valid": score.json_valid, "keys_match": score.keys_match,
            "fields_matched": score.fields_matched, "fields_total": score.fields_total, "name_match": score.name_match,
            "reference": ex.reference.as_text(), "answer": answer.as_text() if answer is not None else None,
        })
    return rows


def task_results(rows: list[dict[str, Any]], kinds: dict[str, TaskKind], profile: dict[str, dict[str, Any]],
                 cfg: EvalConfig, base_scores: dict[str, float] | None, baseline: str | None) -> list[dict[str, Any]]:
    out = []
    for task, kind in kinds.items():
        task_rows = [r for r in rows if r["task_type"] == task and r["score"] is not None]
        options = cfg.task(task)
        margin = float(options.get("margin", cfg.margin))
        min_examples = int(options.get("min_examples", cfg.min_examples))
        seed = cfg.seed + _stable_offset(task)
        values = np.array([r["score"] for r in task_rows], dtype=float)
        low, high = interval(values, cfg.bootstrap_samples, seed)
        score = float(values.mean()) if len(values) else None
        base, base_source, delta, d_low, d_high = None, None, None, None, None
        if base_scores is not None:
            paired = [(r["score"], base_scores[r["example_id"]]) for r in task_rows if r["example_id"] in base_scores]
            if paired:
                diffs = np.array([a - b for a, b in paired], dtype=float)
                base = float(np.mean([b for _, b in paired]))
                base_source = f"candidate `{baseline}` on the same {len(paired)} examples"
                delta = float(diffs.mean())
                d_low, d_high = interval(diffs, cfg.bootstrap_samples, seed)
        if base is None:
            fixed = options.get("baseline", cfg.baselines.get(kind.kind))
            if fixed is not None and score is not None:
                base = float(fixed)
                base_source = "config" if "baseline" in options else f"[eval.baselines] {kind.kind}"
                delta = score - base
                d_low, d_high = (low - base, high - base) if low is not None and high is not None else (None, None)
        decision = decide(len(values), delta, d_low, d_high, margin, min_examples, kind.kind)
        p = profile.get(task, {})
        out.append({
            "task_type": task, "label": p.get("label") or task, "kind": kind.kind, "kind_basis": kind.basis,
            "n": int(len(values)), "score": score, "ci_low": low, "ci_high": high,
            "baseline_score": base, "baseline_source": base_source, "delta": delta,
            "delta_ci_low": d_low, "delta_ci_high": d_high, "margin": margin, "min_examples": min_examples,
            "decision": decision.decision, "reason": decision.reason, "uncertain": decision.uncertain,
            "metrics": _metrics([r for r in rows if r["task_type"] == task]),
        })
    return out


def _metrics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-scorer rates beside the score: JSON validity and key-set match, tool names, missing answers."""
    def rate(key: str) -> float | None:
        values = [r[key] for r in rows if r[key] is not None]
        return sum(values) / len(values) if values else None

    details: dict[str, int] = {}
    for r in rows:
        if r["detail"]:
            details[r["detail"]] = details.get(r["detail"], 0) + 1
    return {"json_valid_rate": rate("json_valid"), "keys_match_rate": rate("keys_match"),
            "tool_name_match_rate": rate("name_match"), "missing": sum(not r["answered"] for r in rows),
            "unscorable": sum(r["score"] is None for r in rows),
            "scorers": sorted({r["scorer"] for r in rows}), "details": dict(sorted(details.items()))}


def _stable_offset(task: str) -> int:
    # A per-task seed that does not depend on Python's salted hash(): intervals are reproducible.
    return int.from_bytes(task.encode("utf-8")[:8].ljust(8, b"\0"), "little") % 100_003


def _baseline_scores(workdir: Path, baseline: str) -> dict[str, float]:
    path = workdir_paths(workdir).eval_candidate(baseline) / "scores.parquet"
    if not path.is_file():
        raise EvalError(f"--baseline `{baseline}`: `{path}` not found. Evaluate it first "
                        f"(`logaudit eval {workdir} --candidate {baseline} ...`).")
    table = pq.read_table(path, columns=["example_id", "score"]).to_pylist()
    return {r["example_id"]: r["score"] for r in table if r["score"] is not None}


def _routed_share(profile: dict[str, dict[str, Any]], routed: set[str]) -> float | None:
    shares = [p.get("share_requests") for t, p in profile.items() if t in routed]
    return float(sum(s for s in shares if s is not None)) if profile else None


# --- writing -------------------------------------------------------------------------------------


def render_markdown(summary: dict[str, Any]) -> str:
    import jinja2

    env = jinja2.Environment(autoescape=False, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    env.filters["md"] = _md_escape
    env.filters["f3"] = lambda v: "—" if v is None else f"{v:.3f}"
    env.filters["signed"] = lambda v: "—" if v is None else f"{v:+.3f}"
    template = env.from_string(resources.files("pipeline.evaluate").joinpath("template.md").read_text(encoding="utf-8"))
    return template.render(s=summary)


def _md_escape(value: Any) -> str:
    """Log-derived text (task labels) rendered inert in Markdown: HTML and table pipes escaped."""
    import html

    return html.escape(str(value), quote=False).replace("|", "\\|").replace("\n", " ")




def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    versions.pause_point(path)


def _write_parquet(path: Path, table: pa.Table) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
