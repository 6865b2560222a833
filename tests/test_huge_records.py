"""Huge records below the per-record limit (issue 17): a row too large to stage with others is
keyed alone in its worker and stored in a file of its own ("solo", pipeline/ingest/writer.py), so
the store commit dedupes on fixed-size keys and never reads the row. A 300 MB line used to make
the commit's DuckDB fail to allocate 512 MiB, losing the good lines with it."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from format_cases import read_rows

from pipeline.cli import cli
from pipeline.ingest import ingest, stage, writer
from tests import test_batch_split_runs, test_claude_code_replays
from tests.test_hostile_inputs import lines
from tests.test_workdir_lock import RECORD, ROOT, stored_ids

MB = 1 << 20


def big_record(rid: str, total: int, seed: int = 0) -> str:
    """A valid request line of exactly `total` bytes (line break included) whose prompt is random
    text (incompressible, like real prompts)."""
    bare = RECORD % (rid, 3, "", rid) + "\n"
    n = total - len(bare.encode())
    text = base64.b64encode(hashlib.shake_256(f"{rid}{seed}".encode()).digest(n))[:n].decode()
    return RECORD % (rid, 3, text, rid) + "\n"


def solo_files(workdir: Path) -> list[Path]:
    return sorted(Path(workdir).glob(f".store/v*/requests/*/*{writer.SOLO_MARK}*.parquet"))


def test_a_record_just_below_the_limit_is_stored_and_one_just_above_quarantined(tmp_path: Path) -> None:
    """`--max-record-mb 8`: a line of 8 MB minus 1 KB among good lines is stored whole, in a file
    of its own; one of 8 MB plus 1 KB is quarantined with its size; every good line kept; the same
    file read again adds nothing (the stored big row is recognized by the keys in its file)."""
    logs = tmp_path / "logs"
    logs.mkdir()
    below, above = big_record("below", 8 * MB - 1024), big_record("above", 8 * MB + 1024)
    (logs / "mixed.jsonl").write_text(lines(3, "before") + below + lines(2, "mid") + above + lines(2, "after"))
    work = tmp_path / "w"
    result = CliRunner().invoke(cli, ["ingest", str(logs), "--out", str(work), "--max-record-mb", "8", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "record_too_large 1" in result.output
    assert sorted(stored_ids(work)) == sorted(
        ["before0", "before1", "before2", "mid0", "mid1", "below", "after0", "after1"])
    (rej,) = [json.loads(x) for f in (work / "rejects").glob("*.jsonl") for x in f.read_text().splitlines()]
    assert rej["reason"] == "record_too_large" and rej["source_line"] == 7
    assert rej["detail"].startswith(f"{8 * MB + 1024:,} bytes, above the per-record limit of {8 * MB:,} bytes")
    (solo,) = solo_files(work)
    prompt = json.loads(below)["request"]["messages"][0]["content"]
    stored = duckdb.sql(f"SELECT request_id, messages[1].content AS c FROM read_parquet('{solo}')").fetchall()
    assert stored == [("below", prompt)]  # the row whole, under its id
    # Read again (touched): the stored big row is a repeat, found without reading it.
    (logs / "mixed.jsonl").touch()
    again = ingest([logs], work, progress=False, max_record_bytes=8 * MB)
    assert again.totals["rows_written"] == 0 and again.totals["rows_duplicate"] == 8
    assert len(stored_ids(work)) == 8 and len(solo_files(work)) == 1


def _staged_only(monkeypatch: pytest.MonkeyPatch, logs: Path, work: Path, limit: int) -> Path:
    """Run an ingest up to its commit; keep what it staged and the commit's arguments in `work`."""

    class Staged(Exception):
        pass

    def keep(staged: writer.StagedRun, manifest: dict, state: dict, executor: object = None) -> None:
        shutil.copytree(staged.tmp, work / "staged")
        (work / "commit_args.json").write_text(
            json.dumps({"run_id": staged.run_id, "manifest": manifest, "state": state}, default=str))
        raise Staged

    monkeypatch.setattr(stage.writer, "commit_run", keep)
    with pytest.raises(Staged):
        ingest([logs], work, progress=False, max_record_bytes=limit, workers=1)
    args = json.loads((work / "commit_args.json").read_text())
    shutil.move(work / "staged", work / ".store" / f"tmp-{args['run_id']}")
    return work


COMMIT_IN_A_FRESH_PROCESS = """
import json, sys
from pathlib import Path
from pipeline.ingest import writer
work = Path(sys.argv[1])
args = json.loads((work / "commit_args.json").read_text())
writer.commit_run(writer.StagedRun(work, args["run_id"]), args["manifest"], args["state"])
status = Path("/proc/self/status").read_text().splitlines()
print(next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024)
"""


def _commit_peak_mb(work: Path) -> float:
    """The peak resident memory of a fresh process that only commits what `work` staged. (VmHWM,
    not ru_maxrss, which a child inherits from the process that forked it.)"""
    proc = subprocess.run([sys.executable, "-c", COMMIT_IN_A_FRESH_PROCESS, str(work)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return float(proc.stdout.split()[-1])


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="peak memory read from /proc (Linux)")
def test_the_commits_memory_does_not_grow_with_the_largest_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same good lines committed with and without a 24 MB record just below a 25 MB limit: the
    commit's peak differs by less than one copy of the record. Before, DuckDB read the row several
    times over (+137 MB at 23 MB; out of memory at 300 MB)."""
    size, limit = 24 * MB, 25 * MB
    peaks = {}
    for case in ("small", "huge"):
        logs = tmp_path / case / "logs"
        logs.mkdir(parents=True)
        huge = big_record("huge", size) if case == "huge" else ""
        (logs / "mixed.jsonl").write_text(lines(40, "a") + huge + lines(40, "b"))
        work = _staged_only(monkeypatch, logs, tmp_path / case / "w", limit)
        peaks[case] = _commit_peak_mb(work)
        assert len(stored_ids(work)) == 80 + (case == "huge")  # every line kept
    assert len(solo_files(tmp_path / "huge" / "w")) == 1
    assert peaks["huge"] - peaks["small"] < size / MB, peaks


# --- a row stored alone is deduplicated exactly as any other row ---------------------------------


def _every_row_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer, "SOLO_ROW_BYTES", -1)


def _store(work: Path, root: Path) -> list[dict]:
    rows = [{**r, "source_file": r["source_file"].replace(str(root), "")} for r in read_rows(work)]
    return sorted(rows, key=lambda r: r["request_id"])


def test_solo_rows_dedupe_and_take_ids_exactly_as_other_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Repeats in one run and across runs, an id reused with other content (`id~fp8`, the rewrite
    path), and a later run's repeat of a stored solo row: the store is the same, column for column,
    whether rows are staged together or each alone."""
    first = lines(3) + lines(2) + (RECORD % ("r0", 9, "other", "r0") + "\n")  # 2 repeats, 1 reused id
    second = lines(3) + (RECORD % ("r1", 10, "again other", "r1") + "\n") + lines(2, "new")
    stores, totals = {}, {}
    for mode in ("together", "alone"):
        if mode == "alone":
            _every_row_alone(monkeypatch)
        root = tmp_path / mode
        logs = root / "logs"
        logs.mkdir(parents=True)
        (logs / "one.jsonl").write_text(first)
        one = ingest([logs], root / "w", progress=False)
        (logs / "two.jsonl").write_text(second)
        two = ingest([logs], root / "w", progress=False)
        stores[mode] = _store(root / "w", root)
        totals[mode] = [{k: t.totals[k] for k in ("rows_written", "rows_duplicate")} for t in (one, two)]
    assert len(solo_files(tmp_path / "alone" / "w")) == len(stores["alone"]) == 7
    assert not solo_files(tmp_path / "together" / "w")
    assert stores["alone"] == stores["together"]
    assert totals["alone"] == totals["together"] == [{"rows_written": 4, "rows_duplicate": 2},
                                                      {"rows_written": 3, "rows_duplicate": 3}]
    assert sum("~" in r["request_id"] for r in stores["alone"]) == 2


@pytest.mark.parametrize("shape", sorted(test_batch_split_runs.SHAPES))
@pytest.mark.parametrize("results_first", [False, True])
def test_batch_halves_stored_alone_are_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                shape: str, results_first: bool) -> None:
    """A batch request and its result ingested in different runs, every row alone: one full row
    per custom_id, equal to the ingest of both files together with rows staged together."""
    req, res = test_batch_split_runs.SHAPES[shape]
    joint = test_batch_split_runs._joint(tmp_path, (req, res))
    _every_row_alone(monkeypatch)
    root = tmp_path / "split"
    logs, work = root / "logs", root / "work"
    logs.mkdir(parents=True)
    for f in (res, req) if results_first else (req, res):
        shutil.copy(f, logs / f.name)
        ingest([logs], work, progress=False)
    assert test_batch_split_runs._rows(work, root) == joint


@pytest.mark.parametrize("main_first", [True, False])
def test_a_replayed_response_stored_alone_counts_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      main_first: bool) -> None:
    """Claude Code's sub-agent replay read in a later run, every row alone: the replay fingerprint
    of the stored solo row (from its file's metadata) finds the repeat (the transcript test's own
    assertions, rerun)."""
    _every_row_alone(monkeypatch)
    test_claude_code_replays.test_replay_in_a_later_run_counts_once(tmp_path, main_first)
    assert len(solo_files(tmp_path / "work")) == 5
