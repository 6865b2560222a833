"""Stage 4, report: the verdict and the weekly comparison from what the earlier stages wrote (body: `stage.py`)."""

from pipeline.report.stage import (
    ReportConfig,
    ReportResult,
    WeeklyConfig,
    WeeklyResult,
    render_report,
    weekly_report,
)

__all__ = ["ReportConfig", "ReportResult", "WeeklyConfig", "WeeklyResult", "render_report", "weekly_report"]
