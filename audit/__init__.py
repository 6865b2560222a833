"""Stage 2, audit: metrics over the normalized store, written to `WORKDIR/audit/` (body: `stage.py`)."""

from audit.stage import AUDIT_MODULES, AuditResult, run_audits

__all__ = ["AUDIT_MODULES", "AuditResult", "run_audits"]
