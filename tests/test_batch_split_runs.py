"""Batch input and results ingested in different runs end as one row per custom_id, exactly as if
both files had been ingested together (pipeline/ingest/sql/batch_links.sql); atomic and idempotent."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from format_cases import CASES, read_rows

from pipeline.ingest import ingest
from pipeline.workdir import versions

SHAPES = {
    "openai": (CASES / "ingest" / "batch_input.jsonl", CASES / "ingest" / "batch_output.jsonl"),
    "anthropic": (CASES / "anthropic_batch" / "msgbatch_requests.jsonl", CASES / "anthropic_batch" / "msgbatch_results.jsonl"),
}


def _rows(workdir: Path, root: Path) -> list[dict]:
    """Every column of every row, the folder the logs were copied to left out of source_file."""
    rows = [{**r, "source_file": r["source_file"].replace(str(root), "")} for r in read_rows(workdir)]
    return sorted(rows, key=lambda r: r["request_id"])


def _joint(tmp_path: Path, files: tuple[Path, Path]) -> list[dict]:
    root = tmp_path / "joint"
    (root / "logs").mkdir(parents=True)
    for f in files:
        shutil.copy(f, root / "logs" / f.name)
    ingest([root / "logs"], root / "work", progress=False)
    return _rows(root / "work", root)


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("results_first", [False, True])
def test_later_run_completes_the_stored_half(tmp_path: Path, shape: str, results_first: bool) -> None:
    req, res = SHAPES[shape]
    joint = _joint(tmp_path, (req, res))
    root = tmp_path / "split"
    logs, work = root / "logs", root / "work"
    logs.mkdir(parents=True)
    first, second = (res, req) if results_first else (req, res)
    shutil.copy(first, logs / first.name)
    one = ingest([logs], work, progress=False)
    halves = _rows(work, root)
    assert one.totals["rows_completed"] == 0 and halves != joint
    shutil.copy(second, logs / second.name)
    two = ingest([logs], work, progress=False)
    split = _rows(work, root)
    # One row per custom_id, every column (ids, token buckets, prompt, response, source line) as in
    # the single-run ingest; no `id~fp8` rows.
    assert split == joint
    assert all("~" not in r["request_id"] for r in split)
    # Every result line has its request: each completes one stored half; the count reconciles.
    results = len(res.read_text().splitlines())
    assert two.totals["rows_completed"] == results
    assert len(split) == len(halves) + two.totals["rows_written"] - two.totals["rows_completed"]


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_completion_is_idempotent(tmp_path: Path, shape: str) -> None:
    req, res = SHAPES[shape]
    root = tmp_path / "split"
    logs, work = root / "logs", root / "work"
    logs.mkdir(parents=True)
    shutil.copy(req, logs / req.name)
    ingest([logs], work, progress=False)
    shutil.copy(res, logs / res.name)
    ingest([logs], work, progress=False)
    done = _rows(work, root)
    # Both files read again (touched), and each half again on its own under another name: repeats.
    for f in logs.iterdir():
        f.touch()
    again = ingest([logs], work, progress=False)
    assert again.totals["rows_written"] == 0 and again.totals["rows_completed"] == 0
    assert _rows(work, root) == done
    for name, src in (("again_" + req.name, req), ("again_" + res.name, res)):
        shutil.copy(src, logs / name)
        half = ingest([logs], work, progress=False)
        assert half.totals["rows_written"] == 0, name
    assert _rows(work, root) == done


def test_run_killed_before_the_commit_leaves_the_store_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    req, res = SHAPES["openai"]
    joint = _joint(tmp_path, (req, res))
    root = tmp_path / "split"
    logs, work = root / "logs", root / "work"
    logs.mkdir(parents=True)
    shutil.copy(req, logs / req.name)
    ingest([logs], work, progress=False)
    before = _rows(work, root)
    shutil.copy(res, logs / res.name)

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(versions, "commit_version", killed)
    with pytest.raises(KeyboardInterrupt):
        ingest([logs], work, progress=False)
    # The rewritten file never touched the committed version (its files are hard-linked).
    assert _rows(work, root) == before
    monkeypatch.undo()
    ingest([logs], work, progress=False)
    assert _rows(work, root) == joint
