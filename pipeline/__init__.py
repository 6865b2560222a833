"""llm-log-audit: ingest -> store -> audit -> dataset -> report.

The public Python API; the `logaudit` CLI is a thin layer over these functions.
"""

from pipeline.ingest import IngestResult, ingest

__all__ = ["IngestResult", "ingest"]
