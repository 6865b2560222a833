"""Stage 1, ingest: exported logs -> the normalized store (body: `stage.py`; store writes: `writer.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.ingest.stage import IngestResult, ingest

__all__ = ["IngestResult", "ingest"]


def __getattr__(name: str) -> Any:
    # The stage loads on first use: importing one module of this package, or `pipeline`, stays light
    # (worker processes import the modules they run, not every stage).
    if name in __all__:
        from pipeline.ingest import stage

        return getattr(stage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
