"""Stage 1: exported LLM API logs -> the normalized, date-partitioned Parquet store.

`ingest(paths, workdir)` streams every input record through format detection and its adapter,
spools rows to staging Parquet in bounded batches, and commits a new store version atomically
(see `writer.py`). Every record is accounted for:

    lines_read = blank + ingested + skipped + rejected          (per file and in total)
    rows_emitted = rows_written + rows_duplicate                 (already in the store / repeated)

where an ingested record produced a row or was merged into one (batch input + output, stream
chunks), a skipped record is valid but not an API call, and a rejected one is bad input; both of
the latter are written to `WORKDIR/rejects/` with file, line, reason and a snippet.
"""

from __future__ import annotations

import hashlib
import os
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
from pipeline.executor import Executor, LocalExecutor, memory_share, processes_with_tasks
from pipeline.ingest import postgres, writer
from pipeline.ingest.formats import (
    FORMATS,
    Context,
    RecordFormat,
    detect_format,
    finish_file_rows,
    finish_row_stages,
    needs_whole_file,
    run_row_stages,
)
from pipeline.ingest.reader import (
    COMPRESSED_SUFFIXES,
    DATA_SUFFIXES,
    MAX_RECORD_BYTES,
    FileReadError,
    RawRecord,
    SkippedPath,
    bounded_lines,
    decode_line,
    discover,
    read_range,
    read_records,
    split_ranges,
    splittable,
)
from pipeline.ingest.rows import RecordError, Row, Skip
from pipeline.progress import is_enabled, phase
from pipeline.workdir.lock import holds_writer_lock
from schemas import SCHEMA_VERSION

BATCH_ROWS = 5000
SNIPPET_CHARS = 300
BATCH_BYTES = 64 << 20  # flush staged rows at this much text, whatever the row count
CHUNK_BYTES = 64 << 20  # byte ranges of large JSONL files processed in parallel
SMALL_INPUT_BYTES = 8 << 20  # below this, one process is faster than a pool
SMALL_FILE_BYTES = 1 << 20  # files below this are batched into one work unit ...
BATCH_BYTES_FILES = 8 << 20  # ... of at most this many bytes on disk ...
BATCH_FILES = 1000  # ... and this many files


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
    # Items inside container records (trace spans, HAR entries) that are not LLM calls; outside
    # the lines identity above, since their record was ingested.
    items_skipped: int = 0
    by_format: Counter = field(default_factory=Counter)
    reject_reasons: Counter = field(default_factory=Counter)

    def merge(self, other: FileStats) -> None:
        """Add the counts of another unit of the same file."""
        if other.status == "error":
            self.status, self.error = "error", other.error
        for k in ("lines_read", "blank", "ingested", "skipped", "rejected", "rows_emitted", "items_skipped"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.by_format.update(other.by_format)
        self.reject_reasons.update(other.reject_reasons)

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
            f"  rows:    {t['rows_written']} written, {t['rows_duplicate']} already present or repeated"
            + (f" ({t['rows_completed']} completed a batch row stored earlier)" if t.get("rows_completed") else ""),
        ]
        if self.manifest["by_format"]:
            fmts = ", ".join(f"{k} {v}" for k, v in sorted(self.manifest["by_format"].items()))
            lines.append(f"  formats: {fmts}")
        if t.get("items_skipped"):
            lines.append(f"  items:   {t['items_skipped']} non-LLM item(s) inside container records skipped")
        not_read = self.manifest.get("paths_not_read") or []
        if not_read:
            kinds = Counter(_not_read_kind(p) for p in not_read)
            shown = ", ".join(Path(p["path"]).name or p["path"] for p in not_read[:NOT_READ_SHOWN])
            more = f", … ({len(not_read) - NOT_READ_SHOWN} more in ingest_manifest.json)" if len(not_read) > NOT_READ_SHOWN else ""
            lines.append(f"  not read: {len(not_read)} path(s) ({', '.join(f'{k} {v}' for k, v in kinds.most_common())}): "
                         f"{shown}{more}")
        if t["rejected"] or t["skipped"] or t.get("items_skipped"):
            reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.manifest["reject_reasons"].items()))
            lines.append(f"  rejects and skips ({reasons}): see {self.workdir}/rejects/")
        special = [p for p in self.manifest.get("paths_not_read", []) if p["reason"].startswith("not_a_regular_file")]
        if special:
            shown = ", ".join(f"{p['path']} ({p['reason']})" for p in special[:3])
            lines.append(f"  not read: {len(special)} path(s) that are not regular files: {shown}")
        errors = [f for f in self.manifest.get("files", []) if f.get("status") == "error"]
        if errors:
            shown = "; ".join(f"{f['path']}: {f['error']}" for f in errors[:3])
            lines.append(f"  file errors: {shown}")
        return "\n".join(lines)


NOT_READ_SHOWN = 5


def _not_read_kind(entry: dict[str, str]) -> str:
    """`.png`, `no extension`, or the reason (`not_found`) for a path the ingest did not read."""
    if entry.get("reason") != "not_a_log_file_extension":
        return entry.get("reason") or "unknown"
    suffix = Path(entry["path"]).suffix.lower()
    return suffix or "no extension"


@dataclass(frozen=True)
class WorkUnit:
    """One partition of the input: a whole file, a byte range of a large JSONL file, or a run of
    small whole files (`more`: read one after another, each with its own counts and file-level
    formats finished per file, so the result is the same as one unit per file).

    `process_unit` is a pure function of a unit and a staging folder, so units run in this
    process, a local pool or as Ray tasks.
    """

    index: int
    path: str
    start: int = 0
    end: int | None = None  # None: the whole file
    first_line: int = 1
    max_record_bytes: int = MAX_RECORD_BYTES
    more: tuple[str, ...] = ()  # further whole files of a batched unit, after `path`

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.path, *self.more)


@dataclass
class UnitResult:
    unit: WorkUnit
    stats: list[FileStats]  # one per file of the unit (a byte range: its part of the file's counts)
    state: dict[str, Any]
    bytes_done: int


def plan_units(files: list[Path], chunk_bytes: int, max_record_bytes: int = MAX_RECORD_BYTES,
               small_bytes: int = SMALL_FILE_BYTES, batch_bytes: int = BATCH_BYTES_FILES,
               batch_files: int = BATCH_FILES) -> list[WorkUnit]:
    """Byte ranges of large JSONL files; whole files otherwise, consecutive small ones (below
    `small_bytes`) batched up to `batch_files` files or `batch_bytes` per unit: a unit's fixed
    cost (a task, a spool file, a Parquet footer the commit reads) is paid per batch, not per
    file, which made 10,000 one-record files 70x slower than one file of the same records."""
    small_bytes, batch_bytes = min(small_bytes, chunk_bytes), min(batch_bytes, chunk_bytes)
    units: list[WorkUnit] = []
    batch: list[str] = []
    batch_size = 0

    def close_batch() -> None:
        nonlocal batch_size
        if batch:
            units.append(WorkUnit(len(units), batch[0], max_record_bytes=max_record_bytes, more=tuple(batch[1:])))
            batch.clear()
            batch_size = 0

    for f in files:
        try:
            size = f.stat().st_size
        except OSError:
            size = 0
        if size < small_bytes:
            if batch and (len(batch) >= batch_files or batch_size + size > batch_bytes):
                close_batch()
            batch.append(str(f))
            batch_size += size
            continue
        close_batch()
        if size > chunk_bytes and splittable(f) and not _whole_file(f):
            for start, end, line in split_ranges(f, chunk_bytes):
                units.append(WorkUnit(len(units), str(f), start, end, line, max_record_bytes))
        else:
            units.append(WorkUnit(len(units), str(f), max_record_bytes=max_record_bytes))
    close_batch()
    return units


def _whole_file(path: Path) -> bool:
    """A file of a format that aggregates its records in order (stream chunks, transcripts) is
    read by one worker: judged by its first record."""
    try:
        with open(path, "rb") as f:
            for i, raw in enumerate(bounded_lines(f, MAX_RECORD_BYTES), start=1):
                rec = decode_line(raw, i)
                if not rec.blank:
                    return isinstance(rec.value, dict) and needs_whole_file(rec.value)
    except OSError:
        return False
    return False


def process_unit(unit: WorkUnit, staged: writer.StagedRun, batch_rows: int = BATCH_ROWS) -> UnitResult:
    """Read, detect and normalize every record of one unit (one file, a byte range of one, or a
    batch of small files) into the staging folder."""
    spool = staged.spool(f"u{unit.index:06d}")
    spool.reset()
    all_stats = [FileStats(p) for p in unit.paths]
    fs = all_stats[0]

    def skip_item(reason: str, detail: str) -> None:
        fs.items_skipped += 1
        fs.reject_reasons[reason] += 1
        spool.write_reject(_reject("skipped", fs.path, ctx.source_line, None, reason, detail, ""))

    ctx = Context(reject=lambda file, line, reason, detail: None, skip_item=skip_item, pend=spool.pend)
    done = 0

    def count(n: int) -> None:
        nonlocal done
        done += n

    batch = RowBatcher(spool, all_stats, batch_rows)
    for fs in all_stats:
        path = Path(fs.path)
        records = (
            read_range(path, unit.start, unit.end, unit.first_line, count, unit.max_record_bytes)
            if unit.end is not None else read_records(path, count, unit.max_record_bytes)
        )
        for row in _ingest_records(records, path, fs, ctx, spool):
            batch.add(row)
        # Formats that aggregate a file's records (stream chunks, transcript lines) emit them now.
        ctx.source_file = str(path)
        for row in run_row_stages(_counted(finish_file_rows(ctx), fs), ctx):
            batch.add(row)
    batch.flush()
    spool.close()
    return UnitResult(unit, all_stats, ctx.state, done)


def process_source(source: postgres.DatabaseSource, staged: writer.StagedRun, since: datetime | None,
                   batch_rows: int = BATCH_ROWS) -> tuple[FileStats, dict[str, Any], postgres.ReadProgress]:
    """Read a database table (LiteLLM's spend logs) like one file whose lines are the table's rows."""
    spool = staged.spool("db" + hashlib.sha1(source.label.encode()).hexdigest()[:10])
    fs = FileStats(source.label)
    progress = postgres.ReadProgress()

    def skip_item(reason: str, detail: str) -> None:
        fs.items_skipped += 1
        fs.reject_reasons[reason] += 1
        spool.write_reject(_reject("skipped", source.label, ctx.source_line, None, reason, detail, ""))

    ctx = Context(skip_item=skip_item, pend=spool.pend)
    records = (
        RawRecord(n, value=row, snippet=f"request_id={row.get('request_id')} startTime={row.get('startTime')}")
        for n, row in enumerate(postgres.read_rows(source, since, progress), start=1)
    )
    batch = RowBatcher(spool, [fs], batch_rows)
    for row in _ingest_records(records, source.label, fs, ctx, spool):
        batch.add(row)
    ctx.source_file = source.label
    for row in run_row_stages(_counted(finish_file_rows(ctx), fs), ctx):
        batch.add(row)
    batch.flush()
    spool.close()
    return fs, ctx.state, progress


def approx_row_bytes(row: Row) -> int:
    """Rough in-memory size of a row's text; agent transcripts carry whole conversations per row.
    Counts every field a client can make large (the spool keys rows above `writer.SOLO_ROW_BYTES`
    on their own, so the size must not miss one)."""
    n = 256
    for key in ("system_text", "response_text", "tools_json", "usage_raw", "request_params", "response_reasoning",
                "metadata_json", "error_message", "feedback_json"):
        v = row.get(key)
        if v:
            n += len(v)
    for m in row.get("messages") or ():
        n += 64 + len(m.get("content") or "") + len(m.get("parts_json") or "") + _calls_bytes(m.get("tool_calls"))
    n += _calls_bytes(row.get("response_tool_calls"))
    for c in row.get("choices") or ():
        n += 64 + len(c.get("text") or "") + _calls_bytes(c.get("tool_calls"))
    return n


def _calls_bytes(calls: list[dict[str, Any]] | None) -> int:
    return sum(64 + len(c.get("arguments") or "") for c in calls) if calls else 0


class RowBatcher:
    """Buffers rows for the spool and flushes by row count OR size, so memory stays bounded even
    when single rows are huge (long agent sessions rebuild the full prompt of every call)."""

    def __init__(self, spool: writer.Spool, stats: list[FileStats], max_rows: int, max_bytes: int = BATCH_BYTES) -> None:
        self.spool, self.stats, self.max_rows, self.max_bytes = spool, stats, max_rows, max_bytes
        self.rows: list[Row] = []
        self.bytes = 0

    def add(self, row: Row) -> None:
        size = approx_row_bytes(row)
        if size > writer.SOLO_ROW_BYTES:  # staged alone and keyed now, while it is in memory anyway
            _flush([row], self.spool, self.stats, solo=True)
            return
        self.rows.append(row)
        self.bytes += size
        if len(self.rows) >= self.max_rows or self.bytes >= self.max_bytes:
            self.flush()

    def flush(self) -> None:
        _flush(self.rows, self.spool, self.stats)
        self.bytes = 0


def _counted(rows: Iterable[Row], fs: FileStats) -> Iterator[Row]:
    for row in rows:
        fs.rows_emitted += 1
        yield row


def _run_units(units: list[WorkUnit], staged: writer.StagedRun, executor: Executor, batch_rows: int,
               bar: Any) -> Iterator[UnitResult]:
    # The ingest bar counts bytes: no second bar from the executor.
    for r in executor.map(_unit_task, units, shared=(staged, batch_rows), label="ingest.units", total=len(units),
                          show_progress=False):
        bar.update(r.bytes_done)
        yield r


def _unit_task(shared: tuple[writer.StagedRun, int], unit: WorkUnit) -> UnitResult:
    """Task: one work unit (a file, or a byte range of a large JSONL file) into its own spool files."""
    staged, batch_rows = shared
    return process_unit(unit, staged, batch_rows)


@holds_writer_lock(create=True)
def ingest(
    paths: Iterable[str | Path],
    workdir: Path,
    *,
    strict: bool = False,
    progress: bool | None = None,
    batch_rows: int = BATCH_ROWS,
    workers: int | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    max_record_bytes: int = MAX_RECORD_BYTES,
    executor: Executor | None = None,
) -> IngestResult:
    """Ingest log files, directories or globs into `workdir`; idempotent and incremental.

    Files unchanged since they were last ingested (same path, size and mtime) are not re-read;
    records already in the store (same id and content) are not written twice. Work is split into
    units (files, and byte ranges of large JSONL files), tasks on `executor` (default: a local
    pool of `workers` processes, the CPU count by default; small inputs run in this process unless
    the executor is a Ray cluster). Work units read the input files and write spool files under
    `workdir`: on a multi-machine Ray cluster both must be reachable by every node.
    Raises IngestError when no input exists, or in `strict` mode when anything was rejected
    (the store is still updated, so the rejects can be inspected).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    specs = [str(p) for p in paths]
    sources = [postgres.DatabaseSource.parse(p) for p in specs if postgres.is_database_url(p)]
    file_specs = [p for p in specs if not postgres.is_database_url(p)]
    # Database URLs may carry credentials: only their labels are ever written or printed.
    shown_inputs = file_specs + [s.label for s in sources]
    files, skipped_paths = discover(file_specs) if file_specs else ([], [])
    missing = [s for s in skipped_paths if s.reason in ("not_found", "no_match")]
    if not files and not sources and missing:
        raise IngestError(f"No input found: `{missing[0].path}` does not exist.")
    if not files and not sources:
        others = "; ".join(f"`{s.path}` ({s.reason})" for s in skipped_paths[:5])
        raise IngestError(
            f"No log files in {', '.join(f'`{p}`' for p in shown_inputs)}"
            + (f" (not read: {others}{' …' if len(skipped_paths) > 5 else ''})" if others else " (it is empty)")
            + f". Logs are {' '.join(DATA_SUFFIXES)} files, optionally {' '.join(COMPRESSED_SUFFIXES)}; nothing was written."
        )
    # Unique per run (part files are named after it); ends with the pid so GC can spot live runs.
    run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}-{os.getpid()}"
    writer.collect_garbage(workdir)
    state = writer.read_state(workdir)
    known = state.setdefault("files", {})
    staged = writer.StagedRun(workdir, run_id)
    started = time.time()
    try:
        stats: dict[str, FileStats] = {}
        todo: list[Path] = []
        stat_of: dict[str, os.stat_result] = {}
        final = staged.spool("zfinish")
        for f in files:
            try:
                st = f.stat()
            except OSError as e:
                fs = stats[str(f)] = FileStats(str(f), status="error", error=f"unreadable_file: {e.strerror or e}")
                final.write_reject(_reject("rejected", str(f), 0, None, "unreadable_file", fs.error or "", ""))
                continue
            prev = known.get(str(f.resolve()))
            if prev and prev.get("size") == st.st_size and prev.get("mtime_ns") == st.st_mtime_ns:
                stats[str(f)] = FileStats(str(f), status="unchanged")
                continue
            todo.append(f)
            stat_of[str(f)] = st
        total_bytes = sum(st.st_size for st in stat_of.values())
        units = plan_units(todo, chunk_bytes, max_record_bytes, SMALL_FILE_BYTES)
        pool: Executor = executor or LocalExecutor(workers if workers is not None else (os.cpu_count() or 1))
        if total_bytes < SMALL_INPUT_BYTES and pool.name == "local":
            pool = LocalExecutor(1, memory_mb=pool.memory_mb)  # process start-up costs more than it saves
        own_pool = pool is not executor
        try:
            merged: dict[str, Any] = {}
            show = is_enabled(progress)
            with phase("ingest.units"), tqdm(total=total_bytes, unit="B", unit_scale=True, desc="ingest",
                                             disable=not show) as bar:
                for done in _run_units(units, staged, pool, batch_rows, bar):
                    for part in done.stats:
                        stats.setdefault(part.path, FileStats(part.path)).merge(part)
                    _merge_state(merged, done.state)
            for source in sources:
                fs, source_state, read = process_source(source, staged, postgres.since_for(state, source.label), batch_rows)
                stats.setdefault(source.label, FileStats(source.label)).merge(fs)
                _merge_state(merged, source_state)
                postgres.remember(state, source.label, read, run_id)
            for path, fs in stats.items():
                if fs.status == "ingested" and path in stat_of:
                    st = stat_of[path]
                    known[str(Path(path).resolve())] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "run_id": run_id}

            def late_reject(file: str, line: int, reason: str, detail: str) -> None:
                fs = stats.get(file)
                if fs is not None:
                    fs.ingested -= 1
                    fs.rejected += 1
                    fs.reject_reasons[reason] += 1
                final.write_reject(_reject("rejected", file, line, None, reason, detail, ""))

            # Formats that join records across lines or files (batch input + output) emit here.
            # The units' workers are done (each holds ~0.4 GB after parsing): let them go before the
            # driver pairs the batch lines (its DuckDB at a task's share) and decides (writer).
            pool.release()
            pending_memory = memory_share(pool.memory_mb, processes_with_tasks(pool))
            # (no `pend` here: a line kept after the pairing would never be paired, so it fails loudly)
            ctx = Context(state=merged, reject=late_reject,
                          pending_pairs=lambda name: staged.pending_pairs(name, pending_memory))
            batch = RowBatcher(final, list(stats.values()), batch_rows)
            with phase("ingest.finish"):
                for fmt in FORMATS:
                    if fmt.finish is not None:
                        for row in fmt.finish(ctx):
                            _count_row(row, stats)
                            for kept in run_row_stages([row], ctx):
                                batch.add(kept)
                # Rows held back by a row stage (counted when first emitted), e.g. Responses API chains.
                for row in finish_row_stages(ctx):
                    batch.add(row)
            batch.flush()
            final.close()
            manifest = _manifest(run_id, shown_inputs, list(stats.values()), skipped_paths, started, state)
            state.setdefault("runs", []).append({"run_id": run_id, "totals": manifest["totals"]})
            writer.commit_run(staged, manifest, state, executor=pool)  # the date partitions: tasks on the same pool
        finally:
            if own_pool:
                pool.close()
    except BaseException:
        staged.abort()
        raise
    result = IngestResult(workdir, manifest)
    if strict:
        problems = []
        bad_files = [f for f in manifest["files"] if f["status"] == "error"]
        if bad_files:
            shown = "; ".join(f"`{f['path']}`: {f['error']}" for f in bad_files[:3])
            problems.append(f"{len(bad_files)} file(s) unreadable or cut short ({shown})")
        if manifest["totals"]["rejected"]:
            problems.append(f"{manifest['totals']['rejected']} record(s) rejected")
        if problems:
            raise IngestError(
                f"{' and '.join(problems)} (strict mode); the readable records were stored, see `{workdir}/rejects/`."
            )
    return result


def _merge_state(into: dict[str, Any], part: dict[str, Any]) -> None:
    """Combine per-unit format state: dicts of pending items keyed by id are merged key by key."""
    for name, value in part.items():
        target = into.setdefault(name, {})
        for key, sub in value.items():
            if isinstance(sub, dict) and isinstance(target.get(key), dict):
                target[key].update(sub)
            elif isinstance(sub, list) and isinstance(target.get(key), list):
                target[key].extend(sub)
            else:
                target[key] = sub


def _count_row(row: Row, stats: dict[str, FileStats]) -> None:
    fs = stats.get(str(row.get("source_file")))
    if fs is not None:
        fs.rows_emitted += 1


def _ingest_records(
    records: Iterator[RawRecord], path: Path | str, fs: FileStats, ctx: Context, spool: writer.Spool
) -> Iterator[Row]:
    ctx.source_file = str(path)
    while True:
        try:
            rec = next(records)
        except StopIteration:
            return
        except FileReadError as e:
            fs.status, fs.error = "error", f"{e.reason}: {e.detail}"
            fs.reject_reasons[e.reason] += 1
            spool.write_reject(_reject("rejected", str(path), fs.lines_read + 1, None, e.reason, e.detail, ""))
            return
        fs.lines_read += 1
        if rec.blank:
            fs.blank += 1
            continue
        yield from _ingest_record(rec, fs, ctx, spool)


def _ingest_record(rec: RawRecord, fs: FileStats, ctx: Context, spool: writer.Spool) -> Iterator[Row]:
    ctx.source_line = rec.line

    def reject(kind: str, reason: str, detail: str, fmt: str | None = None) -> None:
        if kind == "skipped":
            fs.skipped += 1
        else:
            fs.rejected += 1
        fs.reject_reasons[reason] += 1
        spool.write_reject(_reject(kind, fs.path, rec.line, fmt, reason, detail, rec.snippet))

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
    yield from run_row_stages(rows, ctx)


def _complete_row(row: Row, fmt: RecordFormat, path: str, line: int) -> None:
    row.setdefault("source_format", fmt.name)
    if row.get("source_format") is None:
        row["source_format"] = fmt.name
    if row.get("source_file") is None:
        row["source_file"] = path
    if row.get("source_line") is None:
        row["source_line"] = line


def _flush(buffer: list[Row], staged: writer.Spool, stats: list[FileStats], solo: bool = False) -> None:
    """Convert buffered rows to Arrow; a row the schema refuses is rejected on its own."""
    if not buffer:
        return
    try:
        staged.write_rows(writer.rows_to_table(buffer), solo=solo)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        good = []
        for row in buffer:
            try:
                writer.rows_to_table([row])
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
            staged.write_rows(writer.rows_to_table(good), solo=solo)
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
    totals: Counter[str] = Counter(
        dict.fromkeys(("lines_read", "blank", "ingested", "skipped", "rejected", "rows_emitted", "items_skipped"), 0)
    )
    by_format: Counter = Counter()
    reasons: Counter = Counter()
    for fs in stats:
        for k in ("lines_read", "blank", "ingested", "skipped", "rejected", "rows_emitted", "items_skipped"):
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
