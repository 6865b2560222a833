"""Stage 2, audit: metrics over the normalized store, written to `WORKDIR/audit/` (body: `stage.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from audit.stage import AUDIT_MODULES, AuditResult, audit, run_audits

__all__ = ["AUDIT_MODULES", "AuditResult", "audit", "run_audits"]


def __getattr__(name: str) -> Any:
    # The stage loads on first use: importing one module of this package, or `pipeline`, stays light
    # (worker processes import the modules they run, not every stage).
    if name in __all__:
        from audit import stage

        return getattr(stage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
