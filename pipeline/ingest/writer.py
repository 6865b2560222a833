"""The write side of the normalized store: every ingest builds a new version and commits it atomically.

Readers open the store through `pipeline/workdir/store.py`; only ingest writes it.

    WORKDIR/.store/v000003/{requests/date=YYYY-MM-DD/*.parquet, rejects/*.jsonl, ingest_manifest.json, state.json}
    WORKDIR/.store/CURRENT   "v000003": the one atomic switch, a pointer file replaced with rename
    WORKDIR/requests       -> .store/v000003/requests        (convenience links, refreshed after
    WORKDIR/rejects        -> .store/v000003/rejects          each commit; the tool itself always
    WORKDIR/ingest_manifest.json -> .store/v000003/…          resolves CURRENT)

A run builds the next version in a temporary folder (earlier files hard-linked, so this costs no
copying), then renames it into place and replaces CURRENT (`pipeline/workdir/versions.py`). A crash
at any moment leaves CURRENT naming a complete version: the store is as before or as after, never
half-written. The commit point is a file, not a symlink, so a WORKDIR copied by tools that drop
symlinks keeps working; a store whose commit point is the older `current` symlink is read as is
and migrated on its next ingest. Readers glob `requests_glob(workdir)` like any hive-partitioned
dataset. Writers hold the WORKDIR lock (`pipeline/workdir/lock.py`), so commits never race.

The commit is a plan of tasks plus a small merge, like every heavy stage (docs/scaling.md):
workers stage their rows with the keys of every row beside them (`staged_keys.sql`); the driver
decides on keys alone which rows are new and under which id (`decide_rows.sql`); a staged day file
whose rows all go in unchanged is hard-linked into its partition (`part-<run>-l0000.parquet`,
`LINK_MIN_ROWS`); then tasks of consecutive date partitions (`write_partition_task`, on the run's
executor) merge the other rows into each day's file; the driver writes the manifest and switches
the version. Each file of a partition is in time order, the partition as a whole is not (readers
sort). Every DuckDB connection here gets its share of the run's memory budget (`[run] memory_mb`,
`pipeline.executor.memory_share`). A row
larger than `SOLO_ROW_BYTES` is staged in a file of its own and moved into the store by a hard
link (`part-<run>-solo0000.parquet`, its keys also in its metadata for later commits), so no step
reads it and the commit's memory does not depend on the largest record.
"""

from __future__ import annotations

import hashlib
import json
import operator
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.errors import StoreError
from pipeline.executor import MIN_SHARE_MB, Executor, LocalExecutor, memory_share, processes_with_tasks
from pipeline.ingest.formats import PendingLine
from pipeline.progress import phase
from pipeline.sql import SqlDir
from pipeline.workdir import versions
from pipeline.workdir.store import STORE_DIR, current_version, dictionary_encoded, sql_literal
from schemas import PARTITION_COLUMN, REQUEST_SCHEMA, UNDATED

LINKS = ("requests", "rejects", "ingest_manifest.json")

# A row with more text than this is staged in a file of its own ("solo"), its keys computed in the
# worker that holds it anyway and kept in the file's metadata. The commit then dedupes on keys
# alone and moves the file into the store by a hard link, so its memory does not grow with the
# largest record (a 300 MB row used to make DuckDB fail to allocate 512 MiB in the commit, and the
# good lines of the run were lost with it). Stored solo files keep their keys for later commits.
SOLO_ROW_BYTES = 4 << 20
SOLO_DIR = "solo"
KEYS_DIR = "keys"  # beside staging/: the keys of each staged file, under the same name
PENDING_DIR = "pending"  # beside staging/: batch lines waiting for their partner (`batch_join`)
PENDING_SCHEMA = pa.schema([("format", pa.string()), ("side", pa.string()), ("folder", pa.string()),
                            ("stem", pa.string()), ("custom_id", pa.string()), ("source_file", pa.string()),
                            ("source_line", pa.int64()), ("record", pa.string())])  # the fields of PendingLine
PENDING_FLUSH_ROWS = 2_000  # a unit holds at most this many pending lines before writing them
# A day run of at least this many rows in one flushed batch is staged as a file of its own, which the
# commit hard-links into its date partition when every row of it is new under its own id: no
# re-read, re-sort or re-write (that pass was ~17% of the ingest's wall time at 1 M requests). A
# day's smaller runs share a file and are merged per day, so an unsorted input never makes a file
# per day per batch, nor a store of tiny files.
LINK_MIN_ROWS = 1_000
LINK_MARK = "-l"  # in the name of a linked staged file in the store: part-<run>-l0000.parquet
SOLO_MARK = "-solo"  # in the name of a stored solo file: part-<run>-solo0000.parquet
SOLO_KEYS = b"llm_log_audit.row_keys"
SOLO_KEYS_SCHEMA = pa.schema(
    [(name, pa.string()) for name in ("_file", "base_id", "request_id", "source_file", "date", "_fp", "source_format",
                                     "_kind", "_folder", "response_id", "_replay", "_req_fp", "_res_fp")]
    + [("_row", pa.int64()), ("source_line", pa.int64()), ("_sidechain", pa.bool_())]
)


def read_state(workdir: Path) -> dict[str, Any]:
    cur = current_version(workdir)
    if cur and (cur / "state.json").is_file():
        return json.loads((cur / "state.json").read_text(encoding="utf-8"))
    return {"files": {}, "runs": []}


@dataclass
class Spool:
    """Where one unit of work (a file or a byte range of one) writes its rows and rejects.

    Units run in worker processes; each writes uniquely named files into the run's staging folder,
    and beside every staged file the keys of its rows (`staged_keys.sql`, computed while the rows
    are in memory), so no coordination is needed until the commit, which dedupes on keys alone.
    """

    folder: Path
    unit: str
    _part: int = 0
    _rejects: Any = None
    _con: duckdb.DuckDBPyConnection | None = None
    _pending: list[PendingLine] = field(default_factory=list)
    _pending_part: int = 0

    def reset(self) -> None:
        """Remove what an earlier attempt of this unit wrote (a retried task starts clean)."""
        for sub in ("staging", KEYS_DIR, PENDING_DIR):
            for folder in (self.folder / sub, self.folder / sub / SOLO_DIR):
                for f in folder.glob(f"{self.unit}-*.parquet"):
                    f.unlink()
        (self.folder / "rejects" / f"{self.unit}.jsonl").unlink(missing_ok=True)

    def pend(self, line: PendingLine) -> None:
        """Stage a batch line that waits for its partner (read back by `StagedRun.pending_pairs`)."""
        self._pending.append(line)
        if len(self._pending) >= PENDING_FLUSH_ROWS:
            self._flush_pending()

    def _flush_pending(self) -> None:
        if not self._pending:
            return
        path = self.folder / PENDING_DIR / f"{self.unit}-{self._pending_part:06d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        columns = {name: [getattr(line, name) for line in self._pending] for name in PENDING_SCHEMA.names}
        pq.write_table(pa.table(columns, schema=PENDING_SCHEMA), tmp, compression="zstd")
        os.replace(tmp, path)
        self._pending = []
        self._pending_part += 1

    def write_rows(self, table: pa.Table, solo: bool = False) -> None:
        """Stage rows; `solo`: rows too large to stage with others (`SOLO_ROW_BYTES`), each in a
        file of its own, keyed alone with a connection that does not outlive it; its keys also go
        into the file's metadata, for the commits after the one that stores it."""
        if not solo:
            if table.num_rows:
                # in time order, one row group per day: a date partition's task reads its row groups only
                self._write(_in_time_order(table), self._connection())
            return
        for i in range(table.num_rows):
            row = table.slice(i, 1)
            name = self._next_name(SOLO_DIR + "/")
            con = _connection(threads=1)  # not kept: its buffers would keep the row's hashing memory
            try:
                keys = _staged_keys(con, [(name, [row])])
            finally:
                con.close()
            record = {k: v for k, v in keys.to_pylist()[0].items() if k not in ("_file", "_row")}
            self._put("staging", name, [row.replace_schema_metadata({SOLO_KEYS: json.dumps(record)})])
            self._put(KEYS_DIR, name, [keys])

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self._con = _connection(threads=1)  # a worker: the pool already uses every core
        return self._con

    def _write(self, table: pa.Table, con: duckdb.DuckDBPyConnection) -> None:
        """Stage a batch (in time order) with its keys. A day run of `LINK_MIN_ROWS` rows or more is a
        file of its own, which the commit can move into the store as it is; the smaller runs share
        one file, a row group per day (so an unsorted input never makes a file per day per batch).
        The keys of every file of the batch go into one keys file, computed in one query."""
        runs = [dictionary_encoded(run) for run in _day_runs(table)]  # encoded per file: a dictionary of its rows only
        files = [(self._next_name(""), [run]) for run in runs if run.num_rows >= LINK_MIN_ROWS]
        shared = [run for run in runs if run.num_rows < LINK_MIN_ROWS]
        if shared:
            files.append((self._next_name(""), shared))
        for name, parts in files:
            self._put("staging", name, parts)
        self._put(KEYS_DIR, files[0][0], [_staged_keys(con, files)])

    def _next_name(self, sub: str) -> str:
        name = f"{sub}{self.unit}-{self._part:06d}.parquet"
        self._part += 1
        return name

    def _put(self, folder: str, name: str, row_groups: list[pa.Table]) -> None:
        path = self.folder / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")  # a killed writer leaves no half file under the real name
        # No Arrow schema in the footer: a reader sees the staged prompts as strings, as in the
        # files DuckDB writes, not as the dictionary they were written from. Without it the
        # schema's own metadata (a solo row's keys) must be added to the footer by hand.
        schema = row_groups[0].schema
        with pq.ParquetWriter(tmp, schema, compression="zstd", store_schema=False) as out:
            for group in row_groups:
                out.write_table(group)
            if schema.metadata:
                out.add_key_value_metadata(schema.metadata)
        os.replace(tmp, path)

    def write_reject(self, reject: dict[str, Any]) -> None:
        if self._rejects is None:
            self._rejects = open(self.folder / "rejects" / f"{self.unit}.jsonl", "w", encoding="utf-8")  # noqa: SIM115
        self._rejects.write(json.dumps(reject, ensure_ascii=False) + "\n")

    def close(self) -> None:
        self._flush_pending()
        if self._rejects is not None and not self._rejects.closed:
            self._rejects.close()
        if self._con is not None:
            self._con.close()
            self._con = None


@dataclass
class StagedRun:
    """The staging folder of one ingest run: rows and rejects spooled while the inputs stream through."""

    workdir: Path
    run_id: str
    tmp: Path = field(init=False)

    def __post_init__(self) -> None:
        self.tmp = Path(self.workdir) / STORE_DIR / f"tmp-{self.run_id}"
        (self.tmp / "staging").mkdir(parents=True, exist_ok=True)
        (self.tmp / "rejects").mkdir(parents=True, exist_ok=True)

    def spool(self, unit: str) -> Spool:
        return Spool(self.tmp, unit)

    def pending_pairs(self, format_name: str, memory_limit: str) -> Iterator[tuple[str | None, str | None, str, int]]:
        """The staged batch lines of `format_name` paired (`sql/batch_pairs.sql`), streamed:
        (request JSON | None, result JSON | None, source file, line). DuckDB sorts and joins them
        under `memory_limit`, spilling to the staging folder, so the driver holds a batch of pairs
        at a time whatever the number of batch lines."""
        files = sorted(str(f) for f in (self.tmp / PENDING_DIR).glob("*.parquet"))
        if not files:
            return
        con = _connection(memory_limit=memory_limit, temp_directory=self.tmp / "duckdb_tmp", macros=False)
        try:
            reader = SQL.query(con, "batch_pairs", files=files, format=format_name).to_arrow_reader(1_000)
            for batch in reader:
                yield from zip(*(batch.column(i).to_pylist() for i in range(4)), strict=True)
        finally:
            con.close()

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def commit_run(staged: StagedRun, manifest: dict[str, Any], state: dict[str, Any],
               executor: Executor | None = None) -> dict[str, Any]:
    """Deduplicate the staged rows against the store, build the next version and switch to it.

    The date partitions are written by tasks on `executor` (default: in this process).

    Returns {"rows_written", "rows_duplicate", "rows_completed", "duplicates_by_file"}; a completed
    row (a batch request stored earlier, merged with its result read now, or the reverse) is
    written once and replaces the stored half, so the store's row count grows by written - completed.
    """
    workdir = Path(staged.workdir)
    build = staged.tmp / "version"
    prev = current_version(workdir)
    (build / "requests").mkdir(parents=True)
    (build / "rejects").mkdir()
    if prev is not None:
        _link_tree(prev / "requests", build / "requests")
        _link_tree(prev / "rejects", build / "rejects")

    with phase("ingest.commit"):  # the decision in the driver, then the partition tasks ("ingest.commit/tasks")
        stats = _dedupe_and_write(staged, prev, build / "requests", executor or LocalExecutor(1))
    _concat(sorted((staged.tmp / "rejects").glob("*.jsonl")), build / "rejects" / f"{staged.run_id}.jsonl")

    manifest["totals"]["rows_written"] = stats["rows_written"]
    manifest["totals"]["rows_duplicate"] = stats["rows_duplicate"]
    manifest["totals"]["rows_completed"] = stats["rows_completed"]
    for f in manifest["files"]:
        f["rows_duplicate"] = stats["duplicates_by_file"].get(f["path"], 0)
        f["rows_written"] = f["rows_emitted"] - f["rows_duplicate"]
    _write_json(build / "ingest_manifest.json", manifest)
    _write_json(build / "state.json", state)

    final = versions.commit_version(workdir / STORE_DIR, build)  # the commit point
    _ensure_links(workdir, final)
    shutil.rmtree(staged.tmp, ignore_errors=True)
    collect_garbage(workdir)
    return stats


# Deduplication against the store, in `sql/*.sql` (run through the one runner, pipeline/sql.py).
SQL = SqlDir("pipeline.ingest")
KEY_MACROS = ("record_fingerprint_of", "record_fingerprint", "batch_kind", "batch_request_fp", "batch_result_fp",
              "batch_folder", "replay_fp", "row_keys")


def _connection(threads: int | None = None, memory_limit: str | None = None, temp_directory: Path | None = None,
                macros: bool = True) -> duckdb.DuckDBPyConnection:
    """The ingest's one way to open DuckDB: UTC, no progress bar (tasks report progress through the
    executor), optionally `threads`, a `memory_limit` (a share of the run's budget; beyond it DuckDB
    spills to `temp_directory`) and, with `macros`, the key macros (`KEY_MACROS`)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute("SET memory_limit = $limit", {"limit": memory_limit})
    if temp_directory is not None:
        con.execute(f"SET temp_directory = {sql_literal(temp_directory)}")
    if macros:
        for macro in KEY_MACROS:
            SQL.execute(con, macro)
    return con


def _in_time_order(table: pa.Table) -> pa.Table:
    """`table` sorted by `ts` (a stable sort, nulls last), or `table` itself when it already is: logs
    mostly arrive in time order, and the sort copies every row (5% of a worker's time)."""
    ts = table.column("ts")
    if ts.null_count == 0 and (len(ts) < 2 or pc.all(pc.greater_equal(ts[1:], ts[:-1])).as_py()):
        return table
    return table.sort_by([("ts", "ascending")])


def _day_runs(table: pa.Table) -> list[pa.Table]:
    """The rows of `table` (in time order) cut where the UTC day changes, each written as its own
    row group so its statistics let a reader skip the other days."""
    days = pc.fill_null(pc.cast(pc.cast(table.column("ts"), pa.date32()), pa.int32()), -1).to_numpy()
    cuts = [0, *(int(i) + 1 for i in np.flatnonzero(days[1:] != days[:-1])), len(days)]
    return [table.slice(a, b - a) for a, b in zip(cuts, cuts[1:], strict=False) if b > a]


def _staged_keys(con: duckdb.DuckDBPyConnection, files: list[tuple[str, list[pa.Table]]]) -> pa.Table:
    """The keys (`staged_keys.sql`) of the rows staged as `files` ((name relative to the staging
    folder, its row groups)), computed by DuckDB scanning the Arrow tables in memory."""
    tables, names, rows = [], [], []
    for name, parts in files:
        n = sum(t.num_rows for t in parts)
        tables.extend(parts)
        names.append(pa.array([name] * n, pa.string()))
        rows.append(pa.array(range(n), pa.int64()))
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    staged = table.append_column("filename", pa.chunked_array(names, pa.string())).append_column(
        "file_row_number", pa.chunked_array(rows, pa.int64())).append_column(
        "system_md5", _system_md5s(table.column("system_text")))
    con.register("staged_rows", staged)
    try:
        return SQL.query(con, "staged_keys", undated=UNDATED).order("_file, _row").to_arrow_table()
    finally:
        con.unregister("staged_rows")


def _system_md5s(system_text: pa.ChunkedArray) -> pa.ChunkedArray:
    """md5 (hex) of each row's system prompt, computed once per distinct prompt: a batch repeats a
    few hundred ~10 KB prompts over thousands of rows. Arrow's hash kernel finds the distinct ones
    (DuckDB's DISTINCT plus a join back on the text cost three times as much), hashlib hashes their
    UTF-8 bytes, which is what DuckDB's `md5` hashes."""
    digests: dict[str, str] = {}

    def md5(text: str) -> str:
        if text not in digests:
            digests[text] = hashlib.md5(text.encode("utf-8")).hexdigest()
        return digests[text]

    chunks = []
    for chunk in system_text.chunks:
        encoded = chunk if pa.types.is_dictionary(chunk.type) else pc.dictionary_encode(chunk)  # nulls: null indices
        distinct = pa.array([md5(text) for text in encoded.dictionary.to_pylist()], pa.string())
        chunks.append(pc.take(distinct, encoded.indices))
    return pa.chunked_array(chunks, pa.string())


def _dedupe_and_write(staged: StagedRun, prev: Path | None, out: Path, executor: Executor) -> dict[str, Any]:
    key_files = sorted((staged.tmp / KEYS_DIR).rglob("*.parquet"))
    if not key_files:
        return {"rows_written": 0, "rows_duplicate": 0, "rows_completed": 0, "duplicates_by_file": {}}
    # The units' workers are idle now: let them go (each holds ~0.4 GB after parsing), so the
    # decision runs alone with the driver's share of the budget.
    executor.release()
    con = _connection(memory_limit=memory_share(executor.memory_mb, 1), temp_directory=staged.tmp / "duckdb_tmp")
    con.execute("SET preserve_insertion_order = false")
    stored = sorted((prev / "requests").glob("*/*.parquet")) if prev else []
    prev_files = [str(p) for p in stored if SOLO_MARK not in p.name]
    staging = staged.tmp / "staging"
    SQL.execute(con, "load_staged_keys", keys=[str(f) for f in key_files], staging=f"{staging}/")
    SQL.execute(con, "solo_staged", solo=f"{staging / SOLO_DIR}/")
    if prev_files:
        SQL.execute(con, "existing_keys", previous=prev_files)
        SQL.execute(con, "stored_replays", previous=prev_files)
    else:
        con.execute("CREATE TEMP TABLE existing_keys AS SELECT * FROM staged_keys LIMIT 0")
        con.execute("ALTER TABLE existing_keys ADD COLUMN base_id VARCHAR")
        con.execute("CREATE TEMP TABLE stored_replays (_replay VARCHAR)")
    _keys_table(con, "stored_solo", [p for p in stored if SOLO_MARK in p.name])
    SQL.execute(con, "stored_solo_keys")
    SQL.execute(con, "stored_solo_replays")
    SQL.execute(con, "half_repeats")
    SQL.execute(con, "batch_links")
    SQL.execute(con, "decide_rows")
    completed = con.execute("SELECT count(*) FROM decided WHERE completes").fetchone()[0]
    if completed:
        # only the files holding the halves to merge are read
        halves = con.execute("SELECT list(DISTINCT l._file), list(DISTINCT l.stored_file) FROM batch_links l "
                             "JOIN decided d USING (_file, _row) WHERE d.completes").fetchone()
        SQL.execute(con, "completed_rows", staging=sorted(halves[0]), previous=sorted(halves[1]), undated=UNDATED)
    else:
        con.execute("CREATE TEMP TABLE completed_rows (date VARCHAR)")
    dup_rows = con.execute("SELECT source_file, count(*) FROM decided WHERE is_duplicate GROUP BY ALL").fetchall()
    duplicates_by_file = {f: int(c) for f, c in dup_rows}
    rows_written = con.execute("SELECT count(*) FROM decided WHERE NOT is_duplicate").fetchone()[0]
    if rows_written:
        _link_staged_files(con, staged, out)
        _write_partitions(con, staged, out, executor, with_completed=bool(completed))
        _place_solo_rows(con, staged, out)
    if completed:
        _drop_completed_halves(con, staged, prev, out)
    con.close()
    return {
        "rows_written": int(rows_written),
        "rows_duplicate": sum(duplicates_by_file.values()),
        "rows_completed": int(completed),
        "duplicates_by_file": duplicates_by_file,
    }


def _keys_table(con: duckdb.DuckDBPyConnection, name: str, files: list[Path]) -> None:
    """The table `name`: the keys of stored solo files, read from their metadata (never their rows)."""
    keys = []
    for f in files:
        record = json.loads((pq.read_schema(f).metadata or {}).get(SOLO_KEYS, b"{}"))
        if not record:
            raise StoreError(f"`{f}` holds one large row but not its keys; remove it and ingest its source again.")
        keys.append({**record, "_file": str(f), "_row": 0, "base_id": record["request_id"].split("~", 1)[0]})
    con.from_arrow(pa.Table.from_pylist(keys, schema=SOLO_KEYS_SCHEMA)).create(name)


def _new_partition_file(out: Path, date: str, name: str) -> Path:
    """`out/date=D/<name>.parquet`, its folder made; never a file an earlier version holds."""
    dest = out / f"{PARTITION_COLUMN}={date}" / f"{name}.parquet"
    if dest.exists():  # never overwrite a file of an earlier version
        raise StoreError(f"refusing to overwrite `{dest}`")
    dest.parent.mkdir(exist_ok=True)
    return dest


def _place_solo_rows(con: duckdb.DuckDBPyConnection, staged: StagedRun, out: Path) -> None:
    """Move each new solo row into its date partition as its own file: a hard link when it keeps
    its id (no byte of it is read); rewritten (the rare `id~<fp8>` of a reused id) otherwise."""
    new = con.execute("SELECT s._file, d.final_id, d.date, s.request_id FROM decided d JOIN solo_staged s USING (_file) "
                      "WHERE NOT d.is_duplicate AND NOT d.completes ORDER BY s._file").fetchall()
    for n, (src, final_id, date, staged_id) in enumerate(new):
        dest = _new_partition_file(out, date, f"part-{staged.run_id}{SOLO_MARK}{n:04d}")
        if final_id == staged_id:
            os.link(src, dest)
            continue
        table = pq.read_table(src)
        keys = json.loads(table.schema.metadata[SOLO_KEYS])
        table = table.set_column(0, "request_id", pa.array([final_id], pa.string()))
        tmp = staged.tmp / dest.name
        pq.write_table(table.replace_schema_metadata({SOLO_KEYS: json.dumps({**keys, "request_id": final_id})}),
                       tmp, compression="zstd")
        os.replace(tmp, dest)


def _link_staged_files(con: duckdb.DuckDBPyConnection, staged: StagedRun, out: Path) -> None:
    """Move the staged files whose rows all go into the store unchanged (`linked_files.sql`) into
    their date partitions by a hard link, as `part-<run>-lNNNN.parquet` (numbered per date in
    staged-file order, so the names depend only on the staged files). The table `linked` keeps
    them out of the partition writes."""
    SQL.execute(con, "linked_files", min_rows=LINK_MIN_ROWS)
    linked = con.execute("SELECT _file, date, row_number() OVER (PARTITION BY date ORDER BY _file) - 1 "
                         "FROM linked ORDER BY date, _file").fetchall()
    for src, date, n in linked:
        os.link(src, _new_partition_file(out, date, f"part-{staged.run_id}{LINK_MARK}{n:04d}"))


# A commit task writes consecutive date partitions until it holds this many rows: a day has
# ~1-4k rows below 1 M requests a month, and a task's fixed cost (a connection, the staged files'
# footers) is then paid per group of days, not per day. A day's partition is written by the same
# query whichever task holds it, so grouping never changes a byte of the store.
COMMIT_TASK_ROWS = 20_000


@dataclass(frozen=True)
class PartitionWrite:
    """One date partition of the new rows."""

    date: str
    files: list[str]  # the staged files holding its rows
    ids: pa.Table  # (_file, _row, final_id) of its rows in those files
    completed: str | None  # Parquet of the rows completing stored batch halves, of this date only
    tmp: str  # written here, then renamed to `dest` (same file system: the run's staging folder)
    dest: str


@dataclass(frozen=True)
class CommitTask:
    """A task of the commit (`write_partition_task`): consecutive date partitions, written under
    a DuckDB memory limit that is the task's share of the run's budget."""

    parts: list[PartitionWrite]
    memory_limit: str


def _write_partitions(con: duckdb.DuckDBPyConnection, staged: StagedRun, out: Path, executor: Executor,
                      with_completed: bool = False) -> None:
    """Write the new rows one date partition at a time, sorted by time within it.

    The driver decides (above) which staged row goes where under which id; each task then reads
    only the staged files holding rows of its dates and writes each partition's file under a name
    derived from the run and the date, so the tasks run on every core (or node) and a retried task
    writes the same bytes. One partition per query keeps memory bounded whatever the number of days
    (a single partitioned COPY buffers a row group for every open partition, which ran out of memory
    at 10 GB of logs), and a day of more than `COMMIT_TASK_ROWS` rows is written in slices of its
    staged files (`_day_slices`), so it is bounded whatever the size of a day too. Rows that complete a stored batch half come merged from
    `completed_rows`, in their own date. Solo rows are not read here (`_place_solo_rows`).

    While the tasks run, the driver's connection (holding the decision) is held to the smallest
    share and the tasks in flight share the budget.
    """
    new = ("NOT is_duplicate AND NOT completes AND _file NOT IN (SELECT _file FROM solo_staged) "
           "AND _file NOT IN (SELECT _file FROM linked)")
    # The new rows per (date, staged file); a date with rows completing a stored half has a row of 0.
    counts = con.execute(
        f"SELECT date, _file, count(*)::BIGINT AS n FROM decided WHERE {new} GROUP BY ALL "
        "UNION ALL SELECT DISTINCT date, NULL, 0 FROM completed_rows ORDER BY date, _file NULLS FIRST"
    ).fetchall()
    # The tasks in flight are the processes at once: the driver only waits for them (and answers
    # each task's id query), so its connection drops to the floor and its decision spills to disk.
    # A share of the driver too (512 MB each at the default) ran out of memory on the 1 M bench's
    # largest day (54,150 rows, ~500 MB as Arrow), which commits at 640 MB.
    share = memory_share(executor.memory_mb, max(processes_with_tasks(executor) - 1, 1))
    con.execute("SET memory_limit = $limit", {"limit": f"{MIN_SHARE_MB}MB"})
    work = staged.tmp / "partitions"
    work.mkdir(exist_ok=True)

    def part(piece: DaySlice) -> PartitionWrite:
        name = f"part-{staged.run_id}" + (f"-s{piece.index:04d}" if piece.index is not None else "")
        dest = _new_partition_file(out, piece.date, name)
        completed = None
        if with_completed and not piece.index:  # a day's completed halves go with its first slice
            rows = con.sql("SELECT * FROM completed_rows WHERE date = ?", params=[piece.date]).to_arrow_table()
            if rows.num_rows:
                completed = str(work / f"completed-{piece.date}.parquet")
                pq.write_table(rows, completed, compression="zstd")
        ids = con.sql(f"SELECT _file, _row, final_id FROM decided WHERE {new} AND date = ? "
                      "AND list_contains(?, _file) ORDER BY _file, _row",
                      params=[piece.date, list(piece.files)]).to_arrow_table()
        return PartitionWrite(piece.date, list(piece.files), ids, completed,
                              str(work / f"{piece.date}-{name}.parquet"), str(dest))

    groups = _group_slices(_day_slices(counts, COMMIT_TASK_ROWS), COMMIT_TASK_ROWS)
    # Payloads are built lazily as the executor asks for them: the driver holds the ids of the
    # tasks in flight only.
    tasks = (CommitTask([part(piece) for piece in pieces], share) for pieces in groups)
    with phase("tasks"):
        for _ in executor.map(write_partition_task, tasks, label="ingest.commit", total=len(groups)):
            pass


@dataclass(frozen=True)
class DaySlice:
    """The new rows of one date held by some of its staged files: the whole day (`index` None,
    written as `part-<run>.parquet`) or, for a day of more than `COMMIT_TASK_ROWS` rows, one of its
    slices (`part-<run>-sNNNN.parquet`), so a commit task's memory follows a slice, not the day."""

    date: str
    index: int | None
    files: tuple[str, ...]
    rows: int


def _day_slices(counts: list[tuple[str, str | None, int]], max_rows: int) -> list[DaySlice]:
    """Each date's staged files (in name order) cut into slices of at most `max_rows` rows (a file
    holding more rows of the day is a slice of its own); a day that fits is one slice. The cut
    depends only on the staged files, never on the executor, so every run writes the same files."""
    by_date: dict[str, list[tuple[str | None, int]]] = {}
    for date, file, n in counts:
        by_date.setdefault(date, []).append((file, n))
    pieces: list[DaySlice] = []
    for date, files in by_date.items():
        cuts: list[tuple[list[str], int]] = [([], 0)]
        for file, n in files:
            if cuts[-1][0] and cuts[-1][1] + n > max_rows:
                cuts.append(([], 0))
            if file is not None:
                cuts[-1][0].append(file)
            cuts[-1] = (cuts[-1][0], cuts[-1][1] + n)
        whole = len(cuts) == 1
        pieces.extend(DaySlice(date, None if whole else i, tuple(f), n) for i, (f, n) in enumerate(cuts))
    return pieces


def _group_slices(pieces: list[DaySlice], max_rows: int) -> list[list[DaySlice]]:
    """Consecutive slices (in date order) grouped until a group holds `max_rows` rows; a larger
    slice is a group of its own."""
    groups: list[list[DaySlice]] = []
    rows = 0
    for piece in pieces:
        if groups and rows + piece.rows <= max_rows:
            groups[-1].append(piece)
            rows += piece.rows
        else:
            groups.append([piece])
            rows = piece.rows
    return groups


def write_partition_task(shared: None, task: CommitTask) -> list[str]:
    """Task: date partitions of the new rows, from the staged files into the store (each atomic:
    written beside, then renamed). Their bytes depend only on the payload, never on the grouping
    or the memory limit (beyond it, the sort spills to disk)."""
    if not task.parts:
        return []
    temp = Path(task.parts[0].tmp).parent / f"duckdb_tmp-{Path(task.parts[0].tmp).stem}"
    con = _connection(threads=1, memory_limit=task.memory_limit, temp_directory=temp, macros=False)  # one task per core
    # A staged file shared by small runs of many days is read once per day: its footer is parsed once.
    con.execute("SET parquet_metadata_cache = true")
    try:
        return [_write_partition(con, part) for part in task.parts]
    finally:
        con.close()


def _write_partition(con: duckdb.DuckDBPyConnection, part: PartitionWrite) -> str:
    ts = duckdb.ColumnExpression("ts")
    if part.date == UNDATED:
        in_day = ts.isnull()
    else:  # a constant range DuckDB pushes into the scan: the other days' row groups are skipped
        lo = datetime.fromisoformat(part.date).replace(tzinfo=UTC)
        in_day = (ts >= duckdb.ConstantExpression(lo)) & (ts < duckdb.ConstantExpression(lo + timedelta(days=1)))
    if part.files:
        con.read_parquet(part.files, filename=True, file_row_number=True).filter(in_day).create_view(
            "staged_rows", replace=True)
    else:
        con.from_arrow(REQUEST_SCHEMA.empty_table()).project(
            "*, CAST(NULL AS VARCHAR) AS filename, CAST(NULL AS BIGINT) AS file_row_number").create_view(
            "staged_rows", replace=True)
    con.from_arrow(part.ids).create_view("partition_ids", replace=True)
    if part.completed:
        con.read_parquet(part.completed).create_view("completed_rows", replace=True)
    else:
        con.from_arrow(REQUEST_SCHEMA.empty_table().append_column("date", pa.array([], pa.string()))).create_view(
            "completed_rows", replace=True)
    SQL.query(con, "partition_rows").create_view("partition_out", replace=True)
    # zstd level 1: a third less CPU than DuckDB's default (3), files of the same size on these logs;
    # 5,000-row groups: the Parquet writer buffers a row group, which cannot spill
    con.execute(f"COPY (FROM partition_out) TO {sql_literal(part.tmp)} "
                "(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1, ROW_GROUP_SIZE 5000)")
    os.replace(part.tmp, part.dest)
    return part.dest


def _drop_completed_halves(con: duckdb.DuckDBPyConnection, staged: StagedRun, prev: Path | None, out: Path) -> None:
    """Remove from the new version the stored batch halves this run completed.

    The build holds hard links to the previous version's files: a file holding a completed half is
    rewritten without it under a new name and its link removed, so the previous version (still the
    committed one until the pointer switches) is never modified.
    """
    assert prev is not None
    halves = con.execute(
        "SELECT l.stored_file, list(l.stored_row ORDER BY l.stored_row) FROM batch_links l "
        "JOIN decided d USING (_file, _row) WHERE d.completes GROUP BY ALL ORDER BY 1").fetchall()
    for n, (stored_file, rows) in enumerate(halves):
        linked = out / Path(stored_file).relative_to(prev / "requests")
        rewritten = linked.with_name(f"part-{staged.run_id}-kept{n:04d}.parquet")
        tmp = staged.tmp / rewritten.name
        con.execute(
            f"""COPY (SELECT * EXCLUDE (file_row_number)
                      FROM read_parquet({sql_literal(linked)}, hive_partitioning = false, file_row_number = true)
                      WHERE list_position($rows, file_row_number) IS NULL ORDER BY file_row_number)
                TO {sql_literal(tmp)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 20000)""",
            {"rows": rows},
        )
        if pq.ParquetFile(tmp).metadata.num_rows:
            os.replace(tmp, rewritten)
        linked.unlink()


def _concat(parts: list[Path], dest: Path) -> None:
    parts = [p for p in parts if p.stat().st_size]
    if not parts:
        return
    with open(dest, "wb") as out:
        for p in parts:
            with open(p, "rb") as f:
                shutil.copyfileobj(f, out)


def _link_tree(src: Path, dst: Path) -> None:
    if not src.is_dir():
        return
    for f in src.rglob("*"):
        target = dst / f.relative_to(src)
        if f.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(f, target)


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")


def _ensure_links(workdir: Path, version: Path) -> None:
    """Point the convenience links at `version`. Best effort: the store is committed already, and
    where symlinks cannot exist the links are simply absent. A link that a copy turned into a
    plain folder or file (holding only what the store holds) is replaced; anything else is the
    user's and is left alone."""
    for name in LINKS:
        link = workdir / name
        target = Path(STORE_DIR) / version.name / name
        if link.is_symlink() and os.readlink(link) == str(target):
            continue
        if link.exists() and not link.is_symlink() and not _is_materialized_link(link, version / name):
            raise StoreError(f"`{link}` exists and is not managed by llm-log-audit; move it away and retry.")
        tmp = workdir / f".{name}.{uuid.uuid4().hex}"
        try:
            os.symlink(target, tmp)
        except OSError:
            continue  # no symlinks here (some file systems, Windows without the privilege)
        if link.is_dir() and not link.is_symlink():
            shutil.rmtree(link)
        os.replace(tmp, link)


def _is_materialized_link(path: Path, target: Path) -> bool:
    """Is `path` a plain copy of one of our links (every file in it also in `target`)?"""
    if path.is_file():
        try:
            return "run_id" in json.loads(path.read_text(encoding="utf-8")) and target.is_file()
        except (OSError, ValueError):
            return False
    return all(
        (target / f.relative_to(path)).is_file() and f.stat().st_size == (target / f.relative_to(path)).stat().st_size
        for f in path.rglob("*") if f.is_file()
    )


def collect_garbage(workdir: Path) -> None:
    """Remove versions other than the current one and temporary folders of runs that died."""
    versions.remove_leftovers(Path(workdir) / STORE_DIR)


_ROW_VALUES = operator.itemgetter(*REQUEST_SCHEMA.names)


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """`pa.Table.from_pylist(rows, schema=REQUEST_SCHEMA)`, reading each row's values once, in the
    schema's order (every row has every column: `rows.new_row`), then converting column by column.
    `from_pylist` looks every column up in every row, 46 passes over thousands of dicts that have
    left the CPU's caches since they were parsed: ~3 µs a row more (17.3 vs 13.9 µs at ingest)."""
    try:
        values = list(map(_ROW_VALUES, rows))
    except KeyError:  # a row without some column: None there, as from_pylist reads it
        return pa.Table.from_pylist(rows, schema=REQUEST_SCHEMA)
    columns = zip(*values, strict=True) if values else ([] for _ in REQUEST_SCHEMA)
    return pa.Table.from_arrays([pa.array(c, f.type) for c, f in zip(columns, REQUEST_SCHEMA, strict=True)],
                                schema=REQUEST_SCHEMA)
