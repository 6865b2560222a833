"""The commit's decision over the staged keys (`decide_rows.sql`): which copy of a record is kept,
which id each new row is stored under. Only the rows that share a key with another staged row are
ranked; every case below is one where the ranking decides."""

from __future__ import annotations

import duckdb
import pytest

from pipeline.ingest.writer import SQL, _connection

FP = {name: name * 32 for name in "ghkmnp"}  # stand-in md5 hex digests: 32 characters

# (_file, _row, request_id, source_file, source_line, _fp, _replay, _sidechain)
STAGED = [
    # three copies of one record, staged out of order: the first by (source file, line) is kept
    ("s1", 0, "a", "/logs/f2.jsonl", 1, FP["g"], None, False),
    ("s1", 1, "a", "/logs/f1.jsonl", 5, FP["g"], None, False),
    ("s1", 2, "a", "/logs/f1.jsonl", 2, FP["g"], None, False),
    # two records under one id: the first by file order keeps it, the other gets `id~<fp8>`
    ("s2", 0, "b", "/logs/f1.jsonl", 3, FP["h"], None, False),
    ("s2", 1, "b", "/logs/f1.jsonl", 1, FP["k"], None, False),
    # two copies, the later one completes a stored batch half: that one is kept, under the stored id
    ("s3", 0, "c", "/logs/f1.jsonl", 1, FP["m"], None, False),
    ("s3", 1, "c", "/logs/f2.jsonl", 9, FP["m"], None, False),
    # one response replayed under two ids: the parent's copy is kept over the sidechain's
    ("s4", 0, "d1", "/logs/t.jsonl", 1, FP["n"], "replay-1", True),
    ("s4", 1, "d2", "/logs/t.jsonl", 7, FP["p"], "replay-1", False),
    # already stored (same id and content), and an id the store holds for another record
    ("s5", 0, "e", "/logs/f3.jsonl", 1, FP["g"], None, False),
    ("s5", 1, "f", "/logs/f3.jsonl", 2, FP["h"], None, False),
    # alone: kept under its id
    ("s6", 0, "z", "/logs/f3.jsonl", 3, FP["k"], None, False),
]


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = _connection(threads=2)
    con.execute("CREATE TEMP TABLE staged_keys (_file VARCHAR, _row BIGINT, request_id VARCHAR, source_file VARCHAR, "
                "source_line BIGINT, _fp VARCHAR, _replay VARCHAR, _sidechain BOOLEAN, date VARCHAR)")
    con.executemany("INSERT INTO staged_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?, '2026-09-01')", STAGED)
    con.execute("CREATE TEMP TABLE existing_keys AS SELECT * FROM (VALUES ('e', $g), ('f', $n)) t(base_id, _fp)",
                {"g": FP["g"], "n": FP["n"]})
    con.execute("CREATE TEMP TABLE batch_links AS SELECT 's3' AS _file, 1::BIGINT AS _row, "
                "'/store/x.parquet' AS stored_file, 'c-stored' AS stored_id")
    con.execute("CREATE TEMP TABLE half_repeats (_file VARCHAR, _row BIGINT)")
    con.execute("CREATE TEMP TABLE stored_replays (_replay VARCHAR)")
    yield con
    con.close()


def test_each_copy_and_id_is_decided_as_the_rules_say(con: duckdb.DuckDBPyConnection) -> None:
    SQL.execute(con, "decide_rows")
    decided = {(f, r): (dup, final, completes) for f, r, dup, final, completes in con.execute(
        "SELECT _file, _row, is_duplicate, final_id, completes FROM decided").fetchall()}
    assert len(decided) == len(STAGED)
    assert decided == {
        ("s1", 0): (True, "a~" + FP["g"][:8], False),
        ("s1", 1): (True, "a~" + FP["g"][:8], False),
        ("s1", 2): (False, "a", False),
        ("s2", 0): (False, "b~" + FP["h"][:8], False),
        ("s2", 1): (False, "b", False),
        ("s3", 0): (True, "c~" + FP["m"][:8], False),
        ("s3", 1): (False, "c-stored", True),
        ("s4", 0): (True, "d1~" + FP["n"][:8], False),
        ("s4", 1): (False, "d2", False),
        ("s5", 0): (True, "e~" + FP["g"][:8], False),
        ("s5", 1): (False, "f~" + FP["h"][:8], False),
        ("s6", 0): (False, "z", False),
    }
