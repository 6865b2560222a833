"""The commit hard-links a staged day file into the store when every row of it is new under its own
id (writer.py `LINK_MIN_ROWS`, `_link_staged_files`, sql/linked_files.sql), and merges the rest
per day as before. Which way a row is committed must never change the store's rows."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.ingest import ingest, writer
from pipeline.workdir.store import connect_store
from schemas import UNDATED
from tests.test_workdir_lock import RECORD

ROOT = Path(__file__).resolve().parent.parent
LINK_ALL, LINK_NONE = 1, 10**9


def stored_rows(workdir: Path) -> pa.Table:
    con = connect_store(workdir)
    try:
        return con.sql("SELECT * FROM requests ORDER BY request_id").to_arrow_table()
    finally:
        con.close()


def partition_files(workdir: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in sorted(workdir.glob(".store/v*/requests/*/*.parquet")):
        out.setdefault(f.parent.name, []).append(f.name)
    return out


def linked(workdir: Path) -> list[Path]:
    return sorted(f for f in workdir.glob(".store/v*/requests/*/*.parquet") if writer.LINK_MARK + "0" in f.name)


def ingest_with(monkeypatch: pytest.MonkeyPatch, min_rows: int, paths: list[Path], workdir: Path,
                **kwargs: object) -> dict:
    monkeypatch.setattr(writer, "LINK_MIN_ROWS", min_rows)
    return ingest(paths, workdir, progress=False, **kwargs).manifest


@pytest.mark.parametrize("source", ["sample_logs", "tests/cases"])
def test_linking_never_changes_the_stored_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    """Every format, duplicate, colliding id, batch half and replay of the sample logs and the test
    cases: the store holds the same rows, column for column, whether every staged file that can be
    linked is (runs of one row and up) or none is."""
    paths = [ROOT / source]
    totals = {}
    for min_rows in (LINK_ALL, LINK_NONE):
        totals[min_rows] = ingest_with(monkeypatch, min_rows, paths, tmp_path / str(min_rows))["totals"]
    assert totals[LINK_ALL] == totals[LINK_NONE]
    assert stored_rows(tmp_path / str(LINK_ALL)).equals(stored_rows(tmp_path / str(LINK_NONE)))
    assert not linked(tmp_path / str(LINK_NONE))
    files = linked(tmp_path / str(LINK_ALL))
    assert files
    # one Parquet schema for the linked files (written by the workers) and the merged ones (by DuckDB)
    schemas = {pq.read_schema(f).remove_metadata() for f in tmp_path.glob("*/.store/v*/requests/*/*.parquet")}
    assert len(schemas) == 1
    for f in files:  # one date, the partition's, in time order
        ts = pq.read_table(f, columns=["ts"]).column("ts").to_pylist()
        if f.parent.name == f"date={UNDATED}":
            assert set(ts) == {None}
            continue
        assert ts == sorted(ts)
        assert {t.strftime("date=%Y-%m-%d") for t in ts} == {f.parent.name}


def test_a_second_run_links_its_new_rows_and_a_repeat_run_adds_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three weeks, then the whole sample and a copy of week 2 under another name (its rows repeats
    of stored ones) into one WORKDIR: the same rows linked or merged; ingesting it all once more adds
    no row and no file."""
    weeks = [ROOT / "sample_logs" / "envelope" / f"week-0{i}.jsonl.gz" for i in (1, 2, 3)]
    copy = tmp_path / "copy-of-week-02.jsonl.gz"
    copy.write_bytes(weeks[1].read_bytes())
    for min_rows in (LINK_ALL, LINK_NONE):
        workdir = tmp_path / str(min_rows)
        ingest_with(monkeypatch, min_rows, weeks, workdir)
        second = ingest_with(monkeypatch, min_rows, [ROOT / "sample_logs", copy], workdir)
        assert second["totals"]["rows_written"] > 0 and second["totals"]["rows_duplicate"] > 0
    assert linked(tmp_path / str(LINK_ALL))
    assert stored_rows(tmp_path / str(LINK_ALL)).equals(stored_rows(tmp_path / str(LINK_NONE)))
    before = partition_files(tmp_path / str(LINK_ALL))
    again = ingest_with(monkeypatch, LINK_ALL, [ROOT / "sample_logs", copy], tmp_path / str(LINK_ALL))
    assert again["totals"]["rows_written"] == 0
    assert partition_files(tmp_path / str(LINK_ALL)) == before


def _records(day: int, ids: list[str], text: str = "") -> list[str]:
    return [RECORD % (rid, day, text, rid) for rid in ids]


def test_only_a_large_enough_file_of_new_rows_under_their_own_ids_is_linked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`LINK_MIN_ROWS` = 3. Day 1: 3 rows (just at the minimum: linked). Day 2: 2 rows (just below:
    merged). Day 3: 4 rows, one the exact repeat of another (its file merged; 3 rows stored). Day 4:
    3 rows, one of them an id stored earlier with other content (renamed `id~<fp8>`: its file merged)."""
    first = tmp_path / "first.jsonl"
    first.write_text("\n".join(_records(4, ["d4-a"], text="earlier")) + "\n", encoding="utf-8")
    logs = tmp_path / "logs.jsonl"
    lines = (_records(1, ["d1-a", "d1-b", "d1-c"]) + _records(2, ["d2-a", "d2-b"])
             + _records(3, ["d3-a", "d3-b", "d3-a", "d3-c"]) + _records(4, ["d4-a", "d4-b", "d4-c"]))
    logs.write_text("\n".join(lines) + "\n", encoding="utf-8")
    workdir = tmp_path / "w"
    ingest_with(monkeypatch, 3, [first], workdir)
    manifest = ingest_with(monkeypatch, 3, [logs], workdir, batch_rows=100)
    assert manifest["totals"]["rows_written"] == 11 and manifest["totals"]["rows_duplicate"] == 1
    files = partition_files(workdir)
    run = manifest["run_id"]
    assert files["date=2026-07-01"] == [f"part-{run}-l0000.parquet"]
    assert files["date=2026-07-02"] == [f"part-{run}.parquet"]
    assert files["date=2026-07-03"] == [f"part-{run}.parquet"]
    assert len(files["date=2026-07-04"]) == 2 and f"part-{run}.parquet" in files["date=2026-07-04"]
    ids = stored_rows(workdir).column("request_id").to_pylist()
    assert sorted(i for i in ids if i.startswith("d3")) == ["d3-a", "d3-b", "d3-c"]
    assert sum(i.startswith("d4-a~") for i in ids) == 1 and "d4-a" in ids
