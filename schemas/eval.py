"""Contracts of the eval stage's outputs (`WORKDIR/eval/<candidate>/`).

- `scores.parquet`: `SCORES_SCHEMA`, one row per example of the dataset's eval split: the
  candidate's answer, the production answer it is scored against, the scorer used and its score.
- `summary.json`: per task type the score, its 95% bootstrap interval, n, the baseline, the delta
  to it and the decision (`SUMMARY_KEYS` below), plus the config and the inputs' fingerprints.
- `eval.md`: the same for people. `routing.json` and `litellm_router.yaml`: the routing table
  (task fingerprint -> candidate or API) and a LiteLLM router config snippet.
- `answers.jsonl`: the endpoint's answer cache, one line per (candidate, example) answered, so an
  interrupted run resumes and a re-run asks nothing; the API key is never written. Kept beside the
  versions of `WORKDIR/eval` (`WORKDIR/.stages/eval/answers/<candidate>.jsonl`), not in one.

`WORKDIR/eval/` is one versioned unit (every candidate's folder and `prompts.jsonl`), switched whole.

`python -m schemas.eval` regenerates `schemas/eval.md`.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

EVAL_SCHEMA_VERSION = 1

_SCORE_FIELDS: list[tuple[str, pa.DataType, str]] = [
    ("candidate", pa.string(), "Candidate name (`--candidate`)."),
    ("example_id", pa.string(), "The eval example (`lineage.parquet` example_id)."),
    ("request_id", pa.string(), "The production request whose answer is the reference."),
    ("task_type", pa.string(), "Task type from the dataset's lineage (the audit's task types)."),
    ("kind", pa.string(), "How the task type is scored: classification | json | sql | tool_call | text."),
    ("scorer", pa.string(), "The scorer used for this example: the kind, or tool_call when the reference is a tool call."),
    ("answered", pa.bool_(), "False when the candidate gave no answer (missing prediction): scored 0."),
    ("score", pa.float64(), "0-1; null when the reference itself cannot be scored (then excluded from the mean)."),
    ("detail", pa.string(), "Why the score is below 1 (label_mismatch, invalid_json, sql_not_equivalent, …)."),
    ("json_valid", pa.bool_(), "json scorer: the answer parses as JSON."),
    ("keys_match", pa.bool_(), "json scorer: the answer has the reference's top-level key set."),
    ("fields_matched", pa.int64(), "json scorer: top-level fields equal to the reference."),
    ("fields_total", pa.int64(), "json scorer: top-level fields in the reference or the answer."),
    ("name_match", pa.bool_(), "tool_call scorer: the answer calls the reference's tool(s)."),
    ("reference", pa.string(), "The production answer (as in the eval split; tool calls as JSON)."),
    ("answer", pa.string(), "The candidate's answer (tool calls as JSON)."),
]
SCORES_SCHEMA = pa.schema([pa.field(n, t) for n, t, _ in _SCORE_FIELDS])

SUMMARY_KEYS: list[tuple[str, str]] = [
    ("schema_version", "EVAL_SCHEMA_VERSION."),
    ("candidate", "Candidate name."),
    ("source", "`{kind: predictions, path}` or `{kind: endpoint, url, model, api_key_env}` (never the key)."),
    ("baseline", "Null, or the candidate whose per-task scores are the production level (`--baseline`)."),
    ("examples", "`{total, answered, missing, unscorable}` over the eval split."),
    ("tasks", "Per task type: task_type, label, kind, kind_basis, n, score, ci_low, ci_high, baseline_score, "
              "baseline_source, delta, delta_ci_low, delta_ci_high, margin, min_examples, decision "
              "(candidate | api), reason, uncertain, metrics (per-scorer rates), routed, not_routed_because "
              "(a candidate decision the routing table cannot route: no or a shared fingerprint)."),
    ("overall", "`{n, score, ci_low, ci_high}` over every scored example."),
    ("routing", "`{candidate_tasks, api_tasks, routed_request_share}`; the table itself is routing.json."),
    ("config", "The `[eval]` settings used."),
    ("inputs", "Fingerprints of the eval split and lineage it read (`eval_split_identity`: the report refuses "
               "a candidate whose split is not the dataset's current one), the dataset's format, and the "
               "`dataset_version` and `store_version` it was scored on."),
]


_N = {"type": ["number", "null"]}
# report.json `evaluations`: one entry per candidate in WORKDIR/eval/*/summary.json (schemas/report.py).
REPORT_EVALUATIONS = {
    "type": "array",
    "description": "Every candidate `logaudit eval` scored; per task type beside the report's savings for it.",
    "items": {
        "type": "object",
        "required": ["candidate", "source", "model", "baseline", "overall_score", "routed_request_share", "stale",
                     "tasks"],
        "properties": {
            "candidate": {"type": "string"}, "source": {"enum": ["predictions", "endpoint", None]},
            "model": {"type": ["string", "null"]}, "baseline": {"type": ["string", "null"]},
            "overall_score": _N, "routed_request_share": _N,
            "stale": {"type": "boolean", "description": "scored on an earlier eval split than the dataset now holds"},
            "tasks": {"type": "array", "items": {
                "type": "object",
                "required": ["task_type", "kind", "n", "score", "ci_low", "ci_high", "delta", "decision", "uncertain",
                             "reason", "projected_monthly_savings"],
                "properties": {
                    "task_type": {"type": "string"}, "kind": {"type": ["string", "null"]}, "n": {"type": ["integer", "null"]},
                    "score": _N, "ci_low": _N, "ci_high": _N, "delta": _N, "margin": _N,
                    "decision": {"enum": ["candidate", "api", None]}, "uncertain": {"type": "boolean"},
                    "reason": {"type": ["string", "null"]}, "monthly_spend": _N, "projected_monthly_savings": _N,
                    "not_routed_because": {"type": ["string", "null"],
                                           "description": "decision candidate, but the routing table keeps the API"},
                },
            }},
        },
    },
}


def markdown() -> str:
    lines = [
        "# Eval outputs (`WORKDIR/eval/<candidate>/`)",
        "",
        "Generated from `schemas/eval.py` by `python -m schemas.eval`; do not edit by hand.",
        "",
        __doc__.split("\n\n", 1)[1].rsplit("\n\n", 1)[0],
        "",
        "## `scores.parquet`",
        "",
        "| column | type | meaning |",
        "|---|---|---|",
    ]
    lines += [f"| `{n}` | `{t}` | {d} |" for n, t, d in _SCORE_FIELDS]
    lines += ["", "## `summary.json`", "", "| key | meaning |", "|---|---|"]
    lines += [f"| `{k}` | {d} |" for k, d in SUMMARY_KEYS]
    lines.append("")
    return "\n".join(lines)


def write_docs(folder: Path | None = None) -> None:
    ((folder or Path(__file__).parent) / "eval.md").write_text(markdown(), encoding="utf-8")


if __name__ == "__main__":
    write_docs()
