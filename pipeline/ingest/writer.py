"""The write side of the normalized store: every ingest builds a new version and commits it atomically.

Readers open the store through `pipeline/workdir/store.py`; only ingest writes it.

    WORKDIR/.store/v000003/{requests/date=YYYY-MM-DD/*.parquet, rejects/*.jsonl, ingest_manifest.json, state.json}
    WORKDIR/.store/current -> v000003          (the one atomic switch: a symlink replaced with rename)
    WORKDIR/requests       -> .store/current/requests
    WORKDIR/rejects        -> .store/current/rejects
    WORKDIR/ingest_manifest.json -> .store/current/ingest_manifest.json

A run builds the next version in a temporary folder (earlier files hard-linked, so this costs no
copying), then renames it into place and swaps `current`. A crash at any moment leaves `current`
pointing at a complete version: the store is as before or as after, never half-written. Readers
can glob `WORKDIR/requests/*/*.parquet` like any hive-partitioned dataset.
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

    def write_rows(self, table: pa.Table) -> None:
        if table.num_rows:
            name = f"{self.unit}-{self._part:06d}.parquet"
            pq.write_table(table, self.folder / "staging" / name, compression="zstd")
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

    Returns {"rows_written", "rows_duplicate", "duplicates_by_file"}.
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
    for f in manifest["files"]:
        f["rows_duplicate"] = stats["duplicates_by_file"].get(f["path"], 0)
        f["rows_written"] = f["rows_emitted"] - f["rows_duplicate"]
    _write_json(build / "ingest_manifest.json", manifest)
    _write_json(build / "state.json", state)
    _fsync_tree(build)

    store = workdir / STORE_DIR
    n = 1 + max((int(p.name[1:]) for p in store.glob("v[0-9]*") if p.name[1:].isdigit()), default=0)
    final = store / f"v{n:06d}"
    os.replace(build, final)
    link_tmp = store / f"current.{staged.run_id}"
    os.symlink(final.name, link_tmp)
    os.replace(link_tmp, store / "current")  # the commit point
    _ensure_links(workdir)
    shutil.rmtree(staged.tmp, ignore_errors=True)
    collect_garbage(workdir)
    return stats


# Deduplication against the store, in `sql/*.sql` (run through the one runner, pipeline/sql.py).
SQL = SqlDir("pipeline.ingest")


def _dedupe_and_write(staged: StagedRun, prev: Path | None, out: Path) -> dict[str, Any]:
    if not any((staged.tmp / "staging").glob("*.parquet")):
        return {"rows_written": 0, "rows_duplicate": 0, "duplicates_by_file": {}}
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET memory_limit = '1GB'")
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"SET temp_directory = {sql_literal(staged.tmp / 'duckdb_tmp')}")
    staging = str(staged.tmp / "staging" / "*.parquet")
    prev_files = [str(p) for p in sorted((prev / "requests").glob("*/*.parquet"))] if prev else []
    SQL.execute(con, "record_fingerprint")
    SQL.execute(con, "staged_keys", staging=staging, undated=UNDATED)
    if prev_files:
        SQL.execute(con, "existing_keys", previous=prev_files)
    else:
        con.execute("CREATE TEMP TABLE existing_keys (base_id VARCHAR, request_id VARCHAR, _fp VARCHAR)")
    SQL.execute(con, "decide_rows")
    dup_rows = con.execute("SELECT source_file, count(*) FROM decided WHERE is_duplicate GROUP BY ALL").fetchall()
    duplicates_by_file = {f: int(c) for f, c in dup_rows}
    rows_written = con.execute("SELECT count(*) FROM decided WHERE NOT is_duplicate").fetchone()[0]
    if rows_written:
        _write_partitions(con, staged, staging, out)
    con.close()
    return {
        "rows_written": int(rows_written),
        "rows_duplicate": sum(duplicates_by_file.values()),
        "duplicates_by_file": duplicates_by_file,
    }


def _write_partitions(con: duckdb.DuckDBPyConnection, staged: StagedRun, staging: str, out: Path) -> None:
    """Write the new rows one date partition at a time, sorted by time within it.

    One partition per query keeps memory bounded whatever the input size (a single partitioned
    COPY buffers a row group for every open partition, which ran out of memory at 10 GB of logs);
    the time-range filter lets DuckDB skip staging files by their Parquet min/max statistics.
    """
    cols = ", ".join(f's."{f.name}"' for f in REQUEST_SCHEMA if f.name != "request_id")
    dates = [d for (d,) in con.execute("SELECT DISTINCT date FROM decided WHERE NOT is_duplicate ORDER BY 1").fetchall()]
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
        con.execute(
            f"""COPY (SELECT d.final_id AS request_id, {cols}
                      FROM read_parquet({sql_literal(staging)}, filename = true, file_row_number = true) s
                      JOIN decided d ON d._file = s.filename AND d._row = s.file_row_number
                      WHERE NOT d.is_duplicate AND d.date = {sql_literal(date)} AND {in_partition}
                      ORDER BY s.ts, request_id)
                TO {sql_literal(tmp)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 20000)"""
        )
        os.replace(tmp, dest)


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


def _fsync_tree(root: Path) -> None:
    for p in [*root.rglob("*"), root]:
        if p.is_file():
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())


def _ensure_links(workdir: Path) -> None:
    for name in LINKS:
        link = workdir / name
        target = Path(STORE_DIR) / "current" / name
        if link.is_symlink() and os.readlink(link) == str(target):
            continue
        if link.exists() and not link.is_symlink():
            raise StoreError(f"`{link}` exists and is not managed by llm-log-audit; move it away and retry.")
        tmp = workdir / f".{name}.{uuid.uuid4().hex}"
        os.symlink(target, tmp)
        os.replace(tmp, link)


def collect_garbage(workdir: Path) -> None:
    """Remove versions other than `current` and temporary folders of runs that died."""
    store = Path(workdir) / STORE_DIR
    cur = current_version(workdir)
    for p in store.iterdir() if store.is_dir() else []:
        if p.name == "current" or (cur is not None and p.resolve() == cur):
            continue
        if p.is_symlink() or p.is_file():
            p.unlink(missing_ok=True)
        elif p.is_dir() and (p.name.startswith("v") or p.name.startswith("tmp-")):
            if p.name.startswith("tmp-") and _run_alive(p.name[4:]):
                continue
            shutil.rmtree(p, ignore_errors=True)


def _run_alive(run_id: str) -> bool:
    """A run id ends with the pid that owns it; don't delete the staging of a live concurrent run."""
    try:
        pid = int(run_id.rsplit("-", 1)[-1])
    except ValueError:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def rows_to_table(rows: Iterable[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=REQUEST_SCHEMA)
