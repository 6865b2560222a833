"""Stage 1, ingest: exported logs -> the normalized store (body: `stage.py`; store writes: `writer.py`)."""

from pipeline.ingest.stage import IngestResult, ingest

__all__ = ["IngestResult", "ingest"]
