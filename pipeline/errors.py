"""Errors shown to the user. The CLI turns every PipelineError into `Error: …` and exit code 1."""

from __future__ import annotations


class PipelineError(Exception):
    """A failure the user can act on; its message says what, where and what to try."""


class IngestError(PipelineError):
    """Input could not be ingested (no readable input, strict mode found rejects, …)."""


class StoreError(PipelineError):
    """The normalized store is missing or unreadable."""


class AuditError(PipelineError):
    """An audit could not run."""


class DatasetError(PipelineError):
    """The dataset could not be built."""


class ReportError(PipelineError):
    """The report could not be rendered."""


class ConfigError(PipelineError):
    """The configuration file is invalid."""


class SqlError(PipelineError):
    """A `.sql` file is missing, has a bad header, or was run with parameters other than it declares."""
