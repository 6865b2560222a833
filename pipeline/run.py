"""`run_all`: ingest -> audit -> dataset -> report, each stage on its own and in order.

Only chains the stages' public functions (each also callable alone) and hands each one's summary
to `echo` as soon as the stage finishes, so a long run shows progress. A stage failure stops the
chain with the stage's own `PipelineError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import load_toml
from pipeline.executor import execution_summary, executor_config, make_executor, write_execution
from pipeline.progress import enabled_for
from pipeline.workdir.lock import holds_writer_lock


@dataclass(frozen=True)
class RunResult:
    workdir: Path
    stages: dict[str, Any] = field(default_factory=dict)
    """Stage name -> that stage's result object (IngestResult, AuditResult, DatasetResult, ReportResult)."""
    execution: dict[str, Any] = field(default_factory=dict)
    """The executor's record: per task label, tasks, nodes, task times and worker memory."""

    @property
    def report_paths(self) -> dict[str, Path]:
        report = self.stages.get("report")
        return report.paths if report is not None else {}

    def summary(self) -> str:
        paths = self.report_paths
        if not paths:
            return f"Pipeline finished in {self.workdir}/ (no report written)"
        return "Report: " + ", ".join(str(p) for p in paths.values())


@holds_writer_lock(create=True)
def run_all(
    paths: Sequence[str | Path],
    workdir: Path,
    config: Path | None = None,
    echo: Callable[[str], None] | None = None,
    progress: bool | None = None,
    executor: dict[str, Any] | None = None,
) -> RunResult:
    """Run every stage over `paths` into `workdir`.

    Args:
        paths: log files, folders or globs for the ingest stage.
        workdir: the working directory every stage writes into.
        config: a TOML file; each stage reads its own section (`[run]`, `[audit.*]`, `[dataset]`, `[report]`).
        echo: called with each stage's summary as soon as the stage finishes.
        progress: progress bars for every stage (None: the process default, see `pipeline.progress`).
        executor: overrides of the `[run]` section (`executor`, `workers`, `ray_address`, ...).

    Every stage's heavy tasks run on one executor (pipeline/executor.py); what ran where and what
    each task cost is written to `WORKDIR/execution.json`.
    """
    from audit import audit
    from pipeline.dataset import DatasetConfig, build_dataset
    from pipeline.ingest import ingest
    from pipeline.report import render_report
    from pipeline.report.thresholds import report_config

    say = echo or (lambda _text: None)
    workdir = Path(workdir)
    # Parse and check every stage's section up front, so a typo fails before any work is done.
    settings = load_toml(config)
    dataset_config = DatasetConfig.from_toml(settings)
    report_settings = report_config(settings)
    exec_cfg = executor_config(settings, **(executor or {}))
    stages: dict[str, Any] = {}

    with enabled_for(progress), make_executor(exec_cfg) as pool:
        stages["ingest"] = ingest([str(p) for p in paths], workdir, executor=pool)
        say(_titled("ingest", stages["ingest"].summary()))
        stages["audit"] = audit(workdir, settings, executor=pool)
        say(_titled("audit", stages["audit"].summary()))
        stages["dataset"] = build_dataset(workdir, dataset_config, executor=pool)
        say(_titled("dataset", stages["dataset"].summary()))
        execution = pool.stats()
        stages["report"] = render_report(workdir, report_settings)
        say(_titled("report", stages["report"].summary()))
    write_execution(workdir, execution)
    say(_titled("execution", execution_summary(execution)))
    return RunResult(workdir, stages, execution)


def _titled(stage: str, text: str) -> str:
    return f"== {stage} ==\n{text}"
