"""Stage 3, dataset: the fine-tuning dataset built from the store and the audit's labels (body: `stage.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.dataset.stage import DatasetConfig, DatasetResult, build_dataset

__all__ = ["DatasetConfig", "DatasetResult", "build_dataset"]


def __getattr__(name: str) -> Any:
    # The stage loads on first use: importing one module of this package, or `pipeline`, stays light
    # (worker processes import the modules they run, not every stage).
    if name in __all__:
        from pipeline.dataset import stage

        return getattr(stage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
