"""Handoff contracts: what the audit writes matches schemas/audit.py and schemas/labels.py, and the
readers use only the declared names."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq

from schemas import audit as contract
from schemas import labels

ROOT = Path(__file__).resolve().parent.parent


def _has(d: dict, dotted: str) -> bool:
    node = d
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_audit_tables_match_their_contract(sample_run) -> None:
    audit_dir = sample_run.workdir / "audit"
    for table, columns in contract.AUDIT_TABLES.items():
        assert tuple(pq.read_schema(audit_dir / f"{table}.parquet").names) == columns, table
    for table, columns in contract.AUDIT_TABLE_READ_COLUMNS.items():
        assert set(columns) <= set(pq.read_schema(audit_dir / f"{table}.parquet").names), table
    for table, schema in (("request_labels", labels.REQUEST_LABELS_SCHEMA), ("task_types", labels.TASK_TYPES_SCHEMA),
                          ("signal_rates", labels.SIGNAL_RATES_SCHEMA)):
        assert pq.read_schema(audit_dir / f"{table}.parquet").names == schema.names, table


def test_summary_json_carries_every_declared_figure(sample_run) -> None:
    summary = json.loads((sample_run.workdir / "audit" / "summary.json").read_text(encoding="utf-8"))
    assert set(contract.SUMMARY_SECTIONS) <= set(summary["sections"])
    missing = [f"{s}.{k}" for s, keys in contract.SUMMARY_FIELDS.items() for k in keys
               if not _has(summary["sections"][s], k)]
    assert missing == []
    assert not _has(summary["sections"]["cache"], "overall.cacheable_share")  # the check can fail


def test_the_report_reads_summary_figures_by_their_declared_names_only() -> None:
    """Every dotted summary key pipeline/report/inputs.py asks for is declared (no aliases)."""
    source = (ROOT / "pipeline" / "report" / "inputs.py").read_text(encoding="utf-8")
    asked = re.findall(r"_get\((cost|cache|traffic|tasks), \"([a-z0-9_.]+)\"\)", source)
    assert len(asked) >= 8
    undeclared = [f"{s}.{k}" for s, k in asked if k not in contract.SUMMARY_FIELDS[s]]
    assert undeclared == []
    assert not re.search(r"_get\([a-z]+, \"[^\"]+\", \"", source), "a figure read through several names"
