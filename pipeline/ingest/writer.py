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
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import StoreError
from pipeline.sql import SqlDir
from pipeline.workdir import versions
from pipeline.workdir.store import STORE_DIR, current_version, sql_literal
from schemas import PARTITION_COLUMN, REQUEST_SCHEMA, UNDATED

LINKS = ("requests", "rejects", "ingest_manifest.json")


def read_state(workdir: Path) -> dict[str, Any]:
    cur = current_version(workdir)
    if cur and (cur / "state.json").is_file():
        return json.loads((cur / "state.json").read_text(encoding="utf-8"))
    return {"files": {}, "runs": []}


@dataclass
class Spool:
    """Where one unit of work (a file or a byte range of one) writes its rows and rejects.

    Units run in worker processes; each writes uniquely named files into the run's staging folder,
    so no coordination is needed until the commit.
    """

    folder: Path
    unit: str
    _part: int = 0
    _rejects: Any = None

    def reset(self) -> None:
        """Remove what an earlier attempt of this unit wrote (a retried task starts clean)."""
        for f in (self.folder / "staging").glob(f"{self.unit}-*.parquet"):
            f.unlink()
        (self.folder / "rejects" / f"{self.unit}.jsonl").unlink(missing_ok=True)

    def write_rows(self, table: pa.Table) -> None:
        if table.num_rows:
            path = self.folder / "staging" / f"{self.unit}-{self._part:06d}.parquet"
            tmp = path.with_name(f".{path.name}.tmp")  # a killed writer leaves no half file under the real name
            pq.write_table(table, tmp, compression="zstd")
            os.replace(tmp, path)
            self._part += 1

    def write_reject(self, reject: dict[str, Any]) -> None:
        if self._rejects is None:
            self._rejects = open(self.folder / "rejects" / f"{self.unit}.jsonl", "w", encoding="utf-8")  # noqa: SIM115
        self._rejects.write(json.dumps(reject, ensure_ascii=False) + "\n")

    def close(self) -> None:
        if self._rejects is not None and not self._rejects.closed:
            self._rejects.close()


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

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def commit_run(staged: StagedRun, manifest: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """Deduplicate the staged rows against the store, build the next version and switch to it.

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

    stats = _dedupe_and_write(staged, prev, build / "requests")
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


def _dedupe_and_write(staged: StagedRun, prev: Path | None, out: Path) -> dict[str, Any]:
    if not any((staged.tmp / "staging").glob("*.parquet")):
        return {"rows_written": 0, "rows_duplicate": 0, "rows_completed": 0, "duplicates_by_file": {}}
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET memory_limit = '1GB'")
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"SET temp_directory = {sql_literal(staged.tmp / 'duckdb_tmp')}")
    staging = str(staged.tmp / "staging" / "*.parquet")
    prev_files = [str(p) for p in sorted((prev / "requests").glob("*/*.parquet"))] if prev else []
    for macro in ("record_fingerprint", "batch_kind", "batch_request_fp", "batch_result_fp", "batch_folder", "replay_fp"):
        SQL.execute(con, macro)
    SQL.execute(con, "staged_keys", staging=staging, undated=UNDATED)
    if prev_files:
        SQL.execute(con, "existing_keys", previous=prev_files)
        SQL.execute(con, "stored_replays", previous=prev_files)
    else:
        con.execute("CREATE TEMP TABLE existing_keys AS SELECT * FROM staged_keys LIMIT 0")
        con.execute("ALTER TABLE existing_keys ADD COLUMN base_id VARCHAR")
        con.execute("CREATE TEMP TABLE stored_replays (_replay VARCHAR)")
    SQL.execute(con, "half_repeats")
    SQL.execute(con, "batch_links")
    SQL.execute(con, "decide_rows")
    completed = con.execute("SELECT count(*) FROM decided WHERE completes").fetchone()[0]
    if completed:
        SQL.execute(con, "completed_rows", staging=staging, previous=prev_files, undated=UNDATED)
    else:
        con.execute("CREATE TEMP TABLE completed_rows (date VARCHAR)")
    dup_rows = con.execute("SELECT source_file, count(*) FROM decided WHERE is_duplicate GROUP BY ALL").fetchall()
    duplicates_by_file = {f: int(c) for f, c in dup_rows}
    rows_written = con.execute("SELECT count(*) FROM decided WHERE NOT is_duplicate").fetchone()[0]
    if rows_written:
        _write_partitions(con, staged, staging, out, with_completed=bool(completed))
    if completed:
        _drop_completed_halves(con, staged, prev, out)
    con.close()
    return {
        "rows_written": int(rows_written),
        "rows_duplicate": sum(duplicates_by_file.values()),
        "rows_completed": int(completed),
        "duplicates_by_file": duplicates_by_file,
    }


def _write_partitions(con: duckdb.DuckDBPyConnection, staged: StagedRun, staging: str, out: Path,
                      with_completed: bool = False) -> None:
    """Write the new rows one date partition at a time, sorted by time within it.

    One partition per query keeps memory bounded whatever the input size (a single partitioned
    COPY buffers a row group for every open partition, which ran out of memory at 10 GB of logs);
    the time-range filter lets DuckDB skip staging files by their Parquet min/max statistics.
    Rows that complete a stored batch half come merged from `completed_rows`, in their own date.
    """
    cols = ", ".join(f's."{f.name}"' for f in REQUEST_SCHEMA if f.name != "request_id")
    dates = [d for (d,) in con.execute(
        "SELECT DISTINCT date FROM decided WHERE NOT is_duplicate AND NOT completes "
        "UNION SELECT DISTINCT date FROM completed_rows ORDER BY 1").fetchall()]
    for date in dates:
        if date == UNDATED:
            in_partition = "s.ts IS NULL"
        else:
            day = sql_literal(date)
            in_partition = f"s.ts >= CAST({day} AS TIMESTAMPTZ) AND s.ts < CAST({day} AS TIMESTAMPTZ) + INTERVAL 1 DAY"
        dest = out / f"{PARTITION_COLUMN}={date}" / f"part-{staged.run_id}.parquet"
        if dest.exists():  # never overwrite a file of an earlier version
            raise StoreError(f"refusing to overwrite `{dest}`")
        dest.parent.mkdir(exist_ok=True)
        tmp = staged.tmp / f"part-{date}.parquet"
        completed_part = (f"UNION ALL BY NAME SELECT * EXCLUDE (date) FROM completed_rows WHERE date = {sql_literal(date)}"
                          if with_completed else "")
        con.execute(
            f"""COPY (SELECT * FROM (
                        SELECT d.final_id AS request_id, {cols}
                        FROM read_parquet({sql_literal(staging)}, filename = true, file_row_number = true) s
                        JOIN decided d ON d._file = s.filename AND d._row = s.file_row_number
                        WHERE NOT d.is_duplicate AND NOT d.completes AND d.date = {sql_literal(date)} AND {in_partition}
                        {completed_part})
                      ORDER BY ts, request_id)
                TO {sql_literal(tmp)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 20000)"""
        )
        os.replace(tmp, dest)


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


def rows_to_table(rows: Iterable[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=REQUEST_SCHEMA)
