"""Stage 4, report: the verdict and the weekly comparison from what the earlier stages wrote (body: `stage.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.report.stage import (
        ReportConfig,
        ReportResult,
        WeeklyConfig,
        WeeklyResult,
        render_report,
        report,
        weekly_report,
    )

__all__ = ["ReportConfig", "ReportResult", "WeeklyConfig", "WeeklyResult", "render_report", "report", "weekly_report"]


def __getattr__(name: str) -> Any:
    # The stage loads on first use: importing one module of this package, or `pipeline`, stays light
    # (worker processes import the modules they run, not every stage).
    if name in __all__:
        from pipeline.report import stage

        return getattr(stage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
