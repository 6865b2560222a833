"""Stage 3, dataset: the fine-tuning dataset built from the store and the audit's labels (body: `stage.py`)."""

from pipeline.dataset.stage import DatasetConfig, DatasetResult, build_dataset

__all__ = ["DatasetConfig", "DatasetResult", "build_dataset"]
