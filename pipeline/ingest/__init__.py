"""Stage 1: exported LLM API logs -> the normalized, date-partitioned Parquet store.

`ingest(paths, workdir)` streams every input record through format detection and its adapter,
spools rows to staging Parquet in bounded batches, and commits a new store version atomically
(see `store.py`). Every record is accounted for:

    lines_read = blank + ingested + skipped + rejected          (per file and in total)
    rows_emitted = rows_written + rows_duplicate                 (already in the store / repeated)

where an ingested record produced a row or was merged into one (batch input + output, stream
chunks), a skipped record is valid but not an API call, and a rejected one is bad input; both of
the latter are written to `WORKDIR/rejects/` with file, line, reason and a snippet.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from tqdm import tqdm

from pipeline.errors import IngestError
from pipeline.ingest import store
from pipeline.ingest.formats import FORMATS, Context, RecordFormat, detect_format
from pipeline.ingest.reader import FileReadError, RawRecord, SkippedPath, discover, read_records
from pipeline.ingest.rows import RecordError, Row, Skip
from schemas import REQUEST_SCHEMA, SCHEMA_VERSION

BATCH_ROWS = 5000
SNIPPET_CHARS = 300


@dataclass
class FileStats:
    path: str
    status: str = "ingested"  # ingested | unchanged | error
    error: str | None = None
    lines_read: int = 0
    blank: int = 0
    ingested: int = 0
    skipped: int = 0
    rejected: int = 0
    rows_emitted: int = 0
    by_format: Counter = field(default_factory=Counter)
    reject_reasons: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if not isinstance(v, Counter)}
        d["by_format"] = dict(self.by_format)
        d["reject_reasons"] = dict(self.reject_reasons)
        return d


@dataclass(frozen=True)
class IngestResult:
    workdir: Path
    manifest: dict[str, Any]

    @property
    def totals(self) -> dict[str, int]:
        return self.manifest["totals"]

    def summary(self) -> str:
        t = self.totals
        lines = [
            f"Ingested {t['files_read']} file(s) ({t['files_unchanged']} unchanged, {t['files_error']} unreadable) "
            f"into {self.workdir}/requests",
            f"  records: {t['lines_read']} read = {t['ingested']} ingested + {t['skipped']} skipped "
            f"+ {t['rejected']} rejected + {t['blank']} blank",
            f"  rows:    {t['rows_written']} written, {t['rows_duplicate']} already present or repeated",
        ]
        if self.manifest["by_format"]:
            fmts = ", ".join(f"{k} {v}" for k, v in sorted(self.manifest["by_format"].items()))
            lines.append(f"  formats: {fmts}")
        if t["rejected"] or t["skipped"]:
            reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.manifest["reject_reasons"].items()))
            lines.append(f"  rejects and skips ({reasons}): see {self.workdir}/rejects/")
        return "\n".join(lines)


def ingest(
    paths: Iterable[str | Path],
    workdir: Path,
    *,
    strict: bool = False,
    progress: bool | None = None,
    batch_rows: int = BATCH_ROWS,
) -> IngestResult:
    """Ingest log files, directories or globs into `workdir`; idempotent and incremental.

    Files unchanged since they were last ingested (same path, size and mtime) are not re-read;
    records already in the store (same id and content) are not written twice.
    Raises IngestError when no input exists, or in `strict` mode when anything was rejected
    (the store is still updated, so the rejects can be inspected).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    files, skipped_paths = discover([str(p) for p in paths])
    missing = [s for s in skipped_paths if s.reason in ("not_found", "no_match")]
    if not files and missing:
        raise IngestError(f"No input found: `{missing[0].path}` does not exist.")
    # Unique per run (part files are named after it); ends with the pid so GC can spot live runs.
    run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}-{os.getpid()}"
    store.collect_garbage(workdir)
    state = store.read_state(workdir)
    known = state.setdefault("files", {})
    staged = store.StagedRun(workdir, run_id)
    started = time.time()
    try:
        stats: list[FileStats] = []

        def late_reject(file: str, line: int, reason: str, detail: str) -> None:
            fs = next((s for s in reversed(stats) if s.path == file), None)
            if fs is not None:
                fs.ingested -= 1
                fs.rejected += 1
                fs.reject_reasons[reason] += 1
            staged.write_reject(_reject("rejected", file, line, None, reason, detail, ""))

        ctx = Context(reject=late_reject)
        buffer: list[Row] = []
        todo: list[tuple[Path, os.stat_result]] = []
        for f in files:
            try:
                st = f.stat()
            except OSError as e:
                fs = FileStats(str(f), status="error", error=f"unreadable_file: {e.strerror or e}")
                stats.append(fs)
                staged.write_reject(_reject("rejected", str(f), 0, None, "unreadable_file", fs.error, ""))
                continue
            prev = known.get(str(f.resolve()))
            if prev and prev.get("size") == st.st_size and prev.get("mtime_ns") == st.st_mtime_ns:
                stats.append(FileStats(str(f), status="unchanged"))
                continue
            todo.append((f, st))
        total_bytes = sum(st.st_size for _, st in todo)
        show = progress if progress is not None else sys.stderr.isatty()
        with tqdm(total=total_bytes, unit="B", unit_scale=True, desc="ingest", disable=not show) as bar:
            for f, st in todo:
                bar.set_postfix_str(f.name[-40:])
                fs = FileStats(str(f))
                stats.append(fs)
                for row in _ingest_file(f, fs, ctx, staged, bar.update):
                    buffer.append(row)
                    if len(buffer) >= batch_rows:
                        _flush(buffer, staged, stats)
                if fs.status != "error":
                    known[str(f.resolve())] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "run_id": run_id}
            for fmt in FORMATS:
                if fmt.finish is not None:
                    for row in fmt.finish(ctx):
                        _count_row(row, stats)
                        buffer.append(row)
                        if len(buffer) >= batch_rows:
                            _flush(buffer, staged, stats)
            _flush(buffer, staged, stats)
        manifest = _manifest(run_id, paths, stats, skipped_paths, started, state)
        state.setdefault("runs", []).append({"run_id": run_id, "totals": manifest["totals"]})
        store.commit_run(staged, manifest, state)
    except BaseException:
        staged.abort()
        raise
    result = IngestResult(workdir, manifest)
    if strict and manifest["totals"]["rejected"]:
        raise IngestError(
            f"{manifest['totals']['rejected']} record(s) rejected (strict mode); see `{workdir}/rejects/`."
        )
    return result


def _count_row(row: Row, stats: list[FileStats]) -> None:
    for fs in reversed(stats):
        if fs.path == row.get("source_file"):
            fs.rows_emitted += 1
            return


def _ingest_file(
    path: Path, fs: FileStats, ctx: Context, staged: store.StagedRun, on_bytes: Any
) -> Iterator[Row]:
    ctx.source_file = str(path)
    records = read_records(path, on_bytes)
    while True:
        try:
            rec = next(records)
        except StopIteration:
            return
        except FileReadError as e:
            fs.status, fs.error = "error", f"{e.reason}: {e.detail}"
            fs.reject_reasons[e.reason] += 1
            staged.write_reject(_reject("rejected", str(path), fs.lines_read + 1, None, e.reason, e.detail, ""))
            return
        fs.lines_read += 1
        if rec.blank:
            fs.blank += 1
            continue
        yield from _ingest_record(rec, fs, ctx, staged)


def _ingest_record(rec: RawRecord, fs: FileStats, ctx: Context, staged: store.StagedRun) -> Iterator[Row]:
    ctx.source_line = rec.line

    def reject(kind: str, reason: str, detail: str, fmt: str | None = None) -> None:
        if kind == "skipped":
            fs.skipped += 1
        else:
            fs.rejected += 1
        fs.reject_reasons[reason] += 1
        staged.write_reject(_reject(kind, fs.path, rec.line, fmt, reason, detail, rec.snippet))

    if rec.error is not None:
        reject("rejected", rec.error[0], rec.error[1])
        return
    value = rec.value
    if not isinstance(value, dict):
        reject("rejected", "not_an_object", f"record is a JSON {_json_type(value)}, expected an object")
        return
    fmt = detect_format(value)
    if fmt is None:
        keys = ", ".join(sorted(value)[:12])
        reject("rejected", "unknown_format", f"no known log format matches (keys: {keys}); see `logaudit formats`")
        return
    try:
        rows = list(fmt.parse(value, ctx))
        for row in rows:
            _complete_row(row, fmt, fs.path, rec.line)
    except Skip as e:
        reject("skipped", e.reason, e.detail, fmt.name)
        return
    except RecordError as e:
        reject("rejected", e.reason, e.detail, fmt.name)
        return
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as e:
        # A shape the adapter did not anticipate: quarantine the record, never crash the run.
        reject("rejected", "malformed_record", f"{type(e).__name__}: {e}", fmt.name)
        return
    fs.ingested += 1
    fs.by_format[fmt.name] += 1
    fs.rows_emitted += len(rows)
    yield from rows


def _complete_row(row: Row, fmt: RecordFormat, path: str, line: int) -> None:
    row.setdefault("source_format", fmt.name)
    if row.get("source_format") is None:
        row["source_format"] = fmt.name
    if row.get("source_file") is None:
        row["source_file"] = path
    if row.get("source_line") is None:
        row["source_line"] = line


def _flush(buffer: list[Row], staged: store.StagedRun, stats: list[FileStats]) -> None:
    """Convert buffered rows to Arrow; a row the schema refuses is rejected on its own."""
    if not buffer:
        return
    try:
        staged.write_rows(pa.Table.from_pylist(buffer, schema=REQUEST_SCHEMA))
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        good = []
        for row in buffer:
            try:
                pa.Table.from_pylist([row], schema=REQUEST_SCHEMA)
                good.append(row)
            except (pa.ArrowException, TypeError, ValueError, OverflowError) as e:
                fs = next((s for s in reversed(stats) if s.path == row.get("source_file")), None)
                if fs is not None:
                    fs.rows_emitted -= 1
                    fs.ingested -= 1
                    fs.rejected += 1
                    fs.reject_reasons["schema_mismatch"] += 1
                staged.write_reject(
                    _reject("rejected", str(row.get("source_file")), int(row.get("source_line") or 0),
                            row.get("source_format"), "schema_mismatch", f"{type(e).__name__}: {e}", "")
                )
        if good:
            staged.write_rows(pa.Table.from_pylist(good, schema=REQUEST_SCHEMA))
    buffer.clear()


def _reject(kind: str, path: str, line: int, fmt: str | None, reason: str, detail: str, snippet: str) -> dict:
    return {
        "kind": kind,
        "source_file": path,
        "source_line": line,
        "source_format": fmt,
        "reason": reason,
        "detail": (detail or "")[:1000],
        "snippet": (snippet or "")[:SNIPPET_CHARS],
    }


def _json_type(value: Any) -> str:
    return {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _manifest(
    run_id: str,
    paths: Iterable[str | Path],
    stats: list[FileStats],
    skipped_paths: list[SkippedPath],
    started: float,
    state: dict[str, Any],
) -> dict[str, Any]:
    totals = Counter()
    by_format: Counter = Counter()
    reasons: Counter = Counter()
    for fs in stats:
        for k in ("lines_read", "blank", "ingested", "skipped", "rejected", "rows_emitted"):
            totals[k] += getattr(fs, k)
        by_format.update(fs.by_format)
        reasons.update(fs.reject_reasons)
    totals["files_read"] = sum(1 for fs in stats if fs.status == "ingested")
    totals["files_unchanged"] = sum(1 for fs in stats if fs.status == "unchanged")
    totals["files_error"] = sum(1 for fs in stats if fs.status == "error")
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "inputs": [str(p) for p in paths],
        "elapsed_s": round(time.time() - started, 3),
        "totals": dict(totals),
        "by_format": dict(by_format),
        "reject_reasons": dict(reasons),
        "files": [fs.as_dict() for fs in stats],
        "paths_not_read": [{"path": s.path, "reason": s.reason} for s in skipped_paths],
        "previous_runs": [r["run_id"] for r in state.get("runs", [])],
    }
