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
from schemas.logs import REQUEST_SCHEMA
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


def test_a_staged_file_keeps_one_copy_of_each_system_prompt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """300 distinct ~8 KB system prompts a day (2.5 MB, past the Parquet writer's 1 MB dictionary
    limit) sent by 2,400 requests a day over two days: each linked file stores each prompt of its
    rows once (given strings, the writer dropped its dictionary after its first 1,024 rows and
    stored a copy per row) and only its own rows' prompts (a day's file is a slice of a batch
    holding both days), and reads back as strings, the store's schema, with the same rows as a
    store of unlinked files."""
    prompts = [f"Prompt {p:03d}. " + "You answer support questions for one product line. " * 160 for p in range(450)]
    logs = tmp_path / "logs.jsonl"
    with open(logs, "w", encoding="utf-8") as f:
        for i in range(4800):
            day, p = (1, i % 300) if i < 2400 else (2, 150 + i % 300)  # day 1: prompts 0-299, day 2: 150-449
            system = '"messages":[{"role":"system","content":"' + prompts[p] + '"},'
            f.write(RECORD.replace('"messages":[', system) % (f"r{i:04d}", day, i, i) + "\n")
    ingest_with(monkeypatch, 100, [logs], tmp_path / "linked")
    files = linked(tmp_path / "linked")
    assert len(files) == 2
    column = REQUEST_SCHEMA.get_field_index("system_text")
    for f in files:
        meta = pq.ParquetFile(f).metadata
        stored_bytes = sum(meta.row_group(g).column(column).total_uncompressed_size for g in range(meta.num_row_groups))
        texts = pq.read_table(f, columns=["system_text"]).column(0).to_pylist()
        distinct = set(texts)
        assert len(texts) == 2400 and len(distinct) == 300
        assert stored_bytes < 1.1 * sum(len(t) for t in distinct) + 8 * len(texts)  # not 2,400 copies
        dictionary = pq.ParquetFile(f, read_dictionary=["system_text"]).read(columns=["system_text"]).column(0)
        assert sorted(dictionary.chunk(0).dictionary.to_pylist()) == sorted(distinct)  # its own prompts only
        read = pq.read_schema(f)  # strings, not the dictionary the prompts were written from
        assert {c.name: c.type for c in read} == {c.name: c.type for c in REQUEST_SCHEMA if c.name in read.names}
    ingest_with(monkeypatch, LINK_NONE, [logs], tmp_path / "merged")
    assert stored_rows(tmp_path / "linked").equals(stored_rows(tmp_path / "merged"))
