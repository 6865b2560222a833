"""The uniform stage API: `pipeline.{ingest, audit, build_dataset, report}`, each a result with `summary()`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pipeline
from pipeline.config import load_toml

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "cases" / "ingest"


def test_every_stage_through_the_package_api(tmp_path: Path) -> None:
    config = tmp_path / "settings.toml"
    config.write_text('[dataset]\nworkers = 1\n\n[report]\ncurrency = "USD"\nusd_to_currency = 1.0\n',
                      encoding="utf-8")
    settings = load_toml(config)
    wd = tmp_path / "wd"
    results = [
        pipeline.ingest([str(CASES / "envelope_mixed.jsonl"), str(CASES / "litellm_spend.jsonl")], wd),
        pipeline.audit(wd, settings),
        pipeline.build_dataset(wd, settings),
        pipeline.report(wd, settings),
    ]
    kinds = [pipeline.IngestResult, pipeline.AuditResult, pipeline.DatasetResult, pipeline.ReportResult]
    for result, kind in zip(results, kinds, strict=True):
        assert isinstance(result, kind)
        assert isinstance(result.summary(), str) and result.summary()
    audit_result = results[1]
    written = json.loads((wd / "audit" / "summary.json").read_text(encoding="utf-8"))
    assert audit_result.summary_json["sections"].keys() == written["sections"].keys() >= {"cost", "tasks", "cache"}
    assert "Audit written to" in audit_result.summary()
    assert '"currency": "USD"' in json.dumps(results[3].report)  # the [report] section reached the stage (default AUD)
    # A TOML path works for the audit as the settings do.
    assert pipeline.audit(wd, config).summary_json["sections"].keys() == audit_result.summary_json["sections"].keys()


def test_importing_pipeline_loads_no_stage() -> None:
    """Worker processes import `pipeline.*` modules; the package itself must not pull every stage in."""
    code = ("import sys, pipeline, pipeline.similarity; "
            "print(sorted(m for m in sys.modules if m.endswith('.stage') or m in ('duckdb', 'jinja2', 'pandas')))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
