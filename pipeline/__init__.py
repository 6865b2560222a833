"""llm-log-audit: ingest -> store -> audit -> dataset -> report.

The public Python API; the `logaudit` CLI is a thin layer over these functions. Every stage takes
the working directory and its settings and returns a frozen result whose `summary()` is the text
the CLI prints:

    ingest(paths, workdir, **options) -> IngestResult    (pipeline/ingest/stage.py)
    audit(workdir, config)            -> AuditResult     (audit/stage.py)
    build_dataset(workdir, config)    -> DatasetResult   (pipeline/dataset/stage.py)
    report(workdir, config)           -> ReportResult    (pipeline/report/stage.py)

`config` is the parsed TOML settings (`pipeline.config.load_toml`), of which each stage reads its
own section, or the stage's own config object. `docs/architecture.md` shows how the stages meet.

Each stage loads on its first call, so `import pipeline` (which every worker process does) stays light.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

# The stage packages' own __init__ files are light. Importing them here binds their names on this
# package first, so the functions below, which share two of those names, are what `pipeline.ingest`
# and `pipeline.report` mean from here on (a later import of a submodule does not rebind them).
for _package in ("pipeline.dataset", "pipeline.ingest", "pipeline.report"):
    importlib.import_module(_package)

if TYPE_CHECKING:
    from audit.stage import AuditResult
    from pipeline.dataset.stage import DatasetConfig, DatasetResult
    from pipeline.ingest.stage import IngestResult
    from pipeline.report.stage import ReportConfig, ReportResult

__all__ = [
    "AuditResult", "DatasetConfig", "DatasetResult", "IngestResult", "ReportConfig", "ReportResult",
    "audit", "build_dataset", "ingest", "report",
]


def ingest(paths: Iterable[str | Path], workdir: Path, **options: Any) -> IngestResult:
    """Stage 1: logs -> the normalized store (`pipeline.ingest.stage.ingest`; options as there)."""
    from pipeline.ingest.stage import ingest as run

    return run(paths, workdir, **options)


def audit(workdir: Path, config: dict[str, Any] | Path | str | None = None) -> AuditResult:
    """Stage 2: the audit tables and `audit/summary.json` (`audit.stage.audit`)."""
    from audit.stage import audit as run

    return run(workdir, config)


def build_dataset(workdir: Path, config: DatasetConfig | dict[str, Any] | None = None) -> DatasetResult:
    """Stage 3: the fine-tuning dataset (`pipeline.dataset.stage.build_dataset`)."""
    from pipeline.dataset.stage import build_dataset as run

    return run(workdir, config)


def report(workdir: Path, config: ReportConfig | dict[str, Any] | None = None) -> ReportResult:
    """Stage 4: report.json / .md / .html (`pipeline.report.stage.render_report`)."""
    from pipeline.report.stage import render_report as run

    return run(workdir, config)


def __getattr__(name: str) -> Any:
    results = {"AuditResult": "audit.stage", "DatasetConfig": "pipeline.dataset.stage",
               "DatasetResult": "pipeline.dataset.stage", "IngestResult": "pipeline.ingest.stage",
               "ReportConfig": "pipeline.report.stage", "ReportResult": "pipeline.report.stage"}
    if name in results:
        return getattr(importlib.import_module(results[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
