"""`WORKDIR/report/report.json`: the report's stable keys, as a JSON Schema.

Declared once here; `python -m schemas.report` regenerates `schemas/report.schema.json`, a test
checks that file is current, and the report tests validate every report.json they write against it.
A figure that was not measured is `null` (never absent) and its reason is under `not_measured`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPORT_SCHEMA_VERSION = 2
# The closed set of decisions (pipeline/report/decide.py DECISIONS), declared here as the contract.
DECISION_VALUES = ["migrate", "pilot_fine_tune", "prepare_dataset", "fix_caching_first", "stay_with_caching",
                   "insufficient_data"]

NUM = {"type": ["number", "null"]}
INT = {"type": ["integer", "null"]}
STR = {"type": ["string", "null"]}
SHARE = {"type": ["number", "null"], "minimum": 0, "maximum": 1}
SOURCE = {"enum": ["logs", "config", "inferred"]}
SIDE = {"enum": ["caching", "fine-tuning", "unknown"]}


def _obj(props: dict[str, Any], description: str = "", extra: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props, "required": list(props)}
    if description:
        out["description"] = description
    if not extra:
        out["additionalProperties"] = False
    return out


SIGN = _obj({
    "id": {"type": "integer", "minimum": 1, "maximum": 5},
    "name": {"type": "string"},
    "value": NUM,
    "threshold": NUM,
    "unit": {"type": "string", "description": "share | ms | count | the currency"},
    "triggered": {"type": "boolean"},
    "measured": {"type": "boolean", "description": "false when the inputs were missing (triggered is then false)"},
    "state": {"enum": ["present", "absent", "not measured", "not stated"]},
    "evidence": {"type": "string"},
    "how": {"type": "string"},
    "measured_from": SOURCE,
}, "One of the five signs that caching has been outgrown.")

FACTOR = _obj({
    "id": {"type": "integer", "minimum": 1, "maximum": 8},
    "name": {"type": "string"},
    "value": {},
    "display": {"type": "string"},
    "side": SIDE,
    "why": {"type": "string"},
    "measured_from": SOURCE,
    "stay_if": {"type": "string"},
    "switch_if": {"type": "string"},
}, "One row of the eight-factor decision framework.")

TASK = _obj({
    "id": {"type": "string"},
    "label": {"type": "string"},
    "requests": {"type": "integer"},
    "share": SHARE,
    "input_tokens": INT,
    "output_tokens": INT,
    "spend": NUM,
    "monthly_spend": NUM,
    "spend_share": SHARE,
    "cacheable_share": SHARE,
    "consistency": SHARE,
    "repetitiveness": SHARE,
    "clean_requests": {**INT, "description": "requests the audit flagged clean (not examples)"},
    "dataset_examples": {**INT, "description": "train + eval examples the dataset stage kept for this type"},
    "eval_examples": INT,
    "clean_examples": {**INT, "description": "= dataset_examples (kept for readers of schema 1)"},
    "enough_examples": {"type": ["boolean", "null"]},
    "fit": {"type": "string", "description": "the guides' task-type fit (classification/extraction first)"},
    "migratable": {"type": "boolean"},
    "not_migratable_because": {"type": "array", "items": {"type": "string"}},
    "projected_monthly_savings": NUM,
    "rank": INT,
    "rank_reason": STR,
    "spend_rule": STR,
}, "One task type with its migration ranking (rank null = not a candidate).")

CRITERION = _obj({
    "id": {"enum": ["label_accuracy", "distribution_match", "edge_case_coverage", "consistent_format",
                    "no_leakage", "diversity"]},
    "criterion": {"type": "string"},
    "value": NUM,
    "target": {"type": "string"},
    "passed": {"type": ["boolean", "null"], "description": "null = not measured (see reason)"},
    "how": {"type": "string"},
    "reason": STR,
})

PROJECTION_MONTH = _obj({
    "month": {"type": "integer", "minimum": 1},
    "api_only": NUM,
    "with_ideal_caching": NUM,
    "fine_tuned_hybrid": NUM,
})


def json_schema() -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "llm-log-audit report.json",
        "description": f"schema_version {REPORT_SCHEMA_VERSION}. Money is in cost.currency (the audit's USD x "
                       "cost.usd_to_currency); shares are 0-1. Not-measured figures are null, with the reason in "
                       "not_measured.",
        "type": "object",
        "required": ["schema_version", "verdict", "window", "requests", "tokens", "cache", "cost", "task_types",
                     "signals", "latency", "growth", "rules", "signs", "framework", "dataset", "data_quality",
                     "thresholds", "not_measured"],
        "properties": {
            "schema_version": {"const": REPORT_SCHEMA_VERSION},
            "sources": {"type": "object", "additionalProperties": {"type": "boolean"}},
            "verdict": _obj({
                "decision": {"enum": DECISION_VALUES},
                "title": {"type": "string"},
                "headline": {"type": "string"},
                "decided_by": STR,
                "reasons": {"type": "array", "items": _obj({
                    "check": {"enum": ["framework", "payback", "ready", "caching", "ready_share"]},
                    "passed": {"type": ["boolean", "null"]},
                    "text": {"type": "string"},
                })},
                "actions": _obj({k: {"type": "array", "items": {"type": "string"}} for k in (
                    "fine_tune", "fine_tune_next", "build_dataset", "fix_caching", "keep_on_api")},
                    "task type ids for each action"),
                "caveats": {"type": "array", "items": {"type": "string"}},
                "switch_count": {"type": "integer"},
                "signs_present": {"type": "integer"},
                "migrate_first": {"type": "array", "items": {"type": "string"}},
                "fix_prefix_breakers": {"type": "array"},
                "evidence": {"type": "array", "items": {"type": "string"}},
            }, "THE decision: every output (md, html, CLI, weekly) renders this object."),
            "window": _obj({"start": STR, "end": STR, "days": NUM}),
            "requests": _obj({"total": INT, "succeeded": INT, "rejected_at_ingest": INT}),
            "tokens": _obj({"input": INT, "output": INT, "cached_reported": INT}),
            "cache": _obj({
                "reported_hit_share": SHARE,
                "simulated_share": {"type": ["object", "null"], "additionalProperties": SHARE,
                                    "description": "rule set -> share of input tokens cacheable"},
                "prefix_breakers": {"type": "array", "items": {"type": "object"}},
                "calibration": {"type": ["object", "null"],
                                "description": "documented vs calibrated caching rules per model (models[]: model, "
                                               "status, documented, calibrated, reported_share, "
                                               "as_logged_share_documented, as_logged_share_calibrated, flag); "
                                               "flagged[]: models whose simulated share still misses the reported "
                                               "one by more than flag_gap, with the likely cause"},
            }),
            "cost": _obj({
                "currency": {"type": "string"},
                "usd_to_currency": {"type": "number"},
                "window_total": NUM,
                "monthly_run_rate": NUM,
                "monthly_api_only": NUM,
                "monthly_with_ideal_caching": NUM,
                "monthly_fine_tuned_hybrid": NUM,
                "break_even_months": {**NUM, "description": "one-time cost / monthly savings; null = never"},
                "projection": {"type": "array", "items": PROJECTION_MONTH},
            }),
            "task_types": {"type": "array", "items": TASK},
            "signals": _obj({"regeneration_rate": SHARE, "edit_rate": SHARE, "negative_feedback_rate": SHARE}),
            "latency": _obj({"p50_ms": NUM, "p90_ms": NUM, "p99_ms": NUM}),
            "growth": _obj({"weekly_growth_rate": NUM, "projected_6_month_factor": NUM}),
            "rules": _obj({"volume": {"type": "object"}, "spend_per_task": {"type": "object"}}),
            "signs": {"type": "array", "items": SIGN, "minItems": 5, "maxItems": 5},
            "framework": _obj({
                "factors": {"type": "array", "items": FACTOR, "minItems": 8, "maxItems": 8},
                "switch_count": {"type": "integer", "minimum": 0, "maximum": 8},
                "switch_min": {"type": "integer"},
                "meets_switch_rule": {"type": "boolean", "description": "evidence for the decision, not a verdict"},
            }),
            "dataset": _obj({
                "train": INT, "eval": INT,
                "filtered_by": {"type": ["object", "null"], "additionalProperties": {"type": "integer"}},
                "duplicate_share": SHARE, "leakage_pairs": INT,
            }),
            "data_quality": _obj({
                "criteria": {"type": "array", "items": CRITERION, "minItems": 6, "maxItems": 6},
                "passed": {"type": "integer"}, "failed": {"type": "integer"}, "not_measured": {"type": "integer"},
            }),
            "series": {"type": "object", "description": "chart data: daily series and the latency histogram"},
            "thresholds": {"type": "object", "description": "every ReportConfig value used"},
            "not_measured": {"type": "object", "additionalProperties": {"type": "string"}},
            "sanity": {
                "type": "object",
                "description": "figures no real API call can have (pipeline/report/sanity.py): warnings[] (one "
                               "sentence each), outliers[] (reason tokens|timestamp|cost, request_id, ts, model, "
                               "tokens, cost_usd, source file:line; the largest 10 per reason), counts (reason -> "
                               "requests), window (the trimmed window, when timestamps were implausible; else null), "
                               "bounds (the [report] sanity_* settings used)",
            },
            "window_untrimmed": {"type": "object", "description": "the raw window, present when `window` was trimmed"},
        },
    }


def write_schema(folder: Path | None = None) -> None:
    folder = folder or Path(__file__).parent
    (folder / "report.schema.json").write_text(json.dumps(json_schema(), indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write_schema()
