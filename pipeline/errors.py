"""Errors shown to the user. The CLI turns every PipelineError into `Error: …` and exit code 1
(in one place, `pipeline.cli.handle_errors`); `logaudit --debug …` shows the traceback instead.

    PipelineError
    ├── IngestError        input could not be ingested
    ├── StoreError         the store is missing, empty or unreadable
    │   └── MissingInputError   a stage ran before the stage it reads (says what to run)
    ├── AuditError / DatasetError / ReportError
    ├── ConfigError        the configuration file is invalid
    ├── LockedError        another process is writing the WORKDIR
    └── DiskError          the file system refused a write or read (full, read-only, permission)
"""

from __future__ import annotations

import errno
import os


class PipelineError(Exception):
    """A failure the user can act on; its message says what, where and what to try."""


class IngestError(PipelineError):
    """Input could not be ingested (no readable input, strict mode found rejects, …)."""


class StoreError(PipelineError):
    """The normalized store is missing or unreadable."""


class MissingInputError(StoreError):
    """A stage ran before its input exists; the message names what is missing and what to run."""


class AuditError(PipelineError):
    """An audit could not run."""


class DatasetError(PipelineError):
    """The dataset could not be built."""


class ReportError(PipelineError):
    """The report could not be rendered."""


class ConfigError(PipelineError):
    """The configuration file is invalid."""


class LockedError(PipelineError):
    """Another process holds the WORKDIR's writer lock."""


class DiskError(PipelineError):
    """The operating system refused a file operation: disk full, read-only, permission denied."""


_ADVICE = {
    errno.ENOSPC: "the disk is full: free space (or use --out on another disk) and rerun",
    errno.EDQUOT: "the disk quota is exceeded: free space and rerun",
    errno.EFBIG: "the file grew beyond the size this system allows (ulimit -f?): raise the limit and rerun",
    errno.EROFS: "the file system is read-only: use --out on a writable disk",
    errno.EACCES: "permission denied: fix the permissions or use --out somewhere you can write",
    errno.EPERM: "operation not permitted: fix the permissions or use --out somewhere you can write",
}
_DISK_TEXT = (
    ("no space left", errno.ENOSPC), ("disk full", errno.ENOSPC), ("quota exceeded", errno.EDQUOT),
    ("read-only file system", errno.EROFS), ("permission denied", errno.EACCES), ("file too large", errno.EFBIG),
)


def disk_error(exc: BaseException, workdir: object = None) -> DiskError | None:
    """A one-line DiskError for an OS-level failure (OSError, or the text of DuckDB's and Arrow's
    IO errors), else None. It names the file when the OS did, else the WORKDIR being written.

    Earlier results are untouched in every such case: each stage writes a new version beside the
    current one and only switches to it once complete.
    """
    code = getattr(exc, "errno", None)
    text = str(exc)
    if not (isinstance(exc, OSError) and code in _ADVICE):
        low = text.lower()
        code = next((c for marker, c in _DISK_TEXT if marker in low), None)
        if code is None:
            return None
    path = getattr(exc, "filename", None) or (f"{workdir}" if workdir is not None else None)
    what = os.strerror(code)
    where = f"Cannot write `{path}`" if path else "A write failed"
    return DiskError(f"{where}: {what}; {_ADVICE[code]}. Earlier results are unchanged.")


class SqlError(PipelineError):
    """A `.sql` file is missing, has a bad header, or was run with parameters other than it declares."""
