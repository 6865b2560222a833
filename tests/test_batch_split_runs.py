"""Batch input and results ingested in different runs end as one row per custom_id, exactly as if
both files had been ingested together (pipeline/ingest/sql/batch_links.sql); atomic and idempotent."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from format_cases import CASES, read_rows

from pipeline.ingest import ingest, writer
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


@pytest.fixture(params=[False, True], ids=["merged", "linked"])
def link_every_file(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Each test also with every staged file that holds only new rows under their own ids
    hard-linked into the store (`writer.LINK_MIN_ROWS` = 1): never one whose rows complete a
    stored half or repeat one."""
    if request.param:
        monkeypatch.setattr(writer, "LINK_MIN_ROWS", 1)
    return bool(request.param)


def _split(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(root, logs, work) of the split-run ingest, `logs` created."""
    root = tmp_path / "split"
    (root / "logs").mkdir(parents=True)
    return root, root / "logs", root / "work"


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("results_first", [False, True])
@pytest.mark.usefixtures("link_every_file")
def test_later_run_completes_the_stored_half(tmp_path: Path, shape: str, results_first: bool) -> None:
    req, res = SHAPES[shape]
    joint = _joint(tmp_path, (req, res))
    root, logs, work = _split(tmp_path)
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
@pytest.mark.usefixtures("link_every_file")
def test_completion_is_idempotent(tmp_path: Path, shape: str) -> None:
    req, res = SHAPES[shape]
    root, logs, work = _split(tmp_path)
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


def _joint_named(tmp_path: Path, files: dict[str, str]) -> list[dict]:
    root = tmp_path / "joint"
    (root / "logs").mkdir(parents=True)
    for name, text in files.items():
        (root / "logs" / name).write_text(text)
    ingest([root / "logs"], root / "work", progress=False)
    return _rows(root / "work", root)


def test_results_complete_their_own_batch_when_custom_ids_repeat(tmp_path: Path) -> None:
    """Two batches in one folder reuse `ticket-1` for different requests: batch b's results complete
    b's request row (stored as `ticket-1~…`), not a's, as the single-run join pairs them by file stem."""
    req, res = SHAPES["openai"]
    a_in = req.read_text()
    b_in = a_in.replace("My refund never arrived", "My card was charged twice").replace(
        "Classify the ticket.", "Classify the ticket, in one word.")
    files = {"a_batch_input.jsonl": a_in, "b_batch_input.jsonl": b_in, "b_batch_output.jsonl": res.read_text()}
    joint = _joint_named(tmp_path, files)
    root = tmp_path / "split"
    logs, work = root / "logs", root / "work"
    logs.mkdir(parents=True)
    for name in ("a_batch_input.jsonl", "b_batch_input.jsonl"):
        (logs / name).write_text(files[name])
    ingest([logs], work, progress=False)
    (logs / "b_batch_output.jsonl").write_text(files["b_batch_output.jsonl"])
    ingest([logs], work, progress=False)
    split = _rows(work, root)
    assert split == joint
    answered = [r for r in split if r["response_text"] == "returns"]
    assert len(answered) == 1 and answered[0]["messages"][0]["content"] == "My card was charged twice"
    assert len(split) == 6 and sum(r["response_id"] is not None for r in split) == 2


def test_results_whose_file_stem_differs_still_complete(tmp_path: Path) -> None:
    """OpenAI names the downloaded output `batch_<id>_output.jsonl`, whatever the input was called."""
    req, res = SHAPES["openai"]
    files = {"batchinput.jsonl": req.read_text(), "batch_6721f0_output.jsonl": res.read_text()}
    joint = _joint_named(tmp_path, files)
    root = tmp_path / "split"
    logs, work = root / "logs", root / "work"
    logs.mkdir(parents=True)
    (logs / "batchinput.jsonl").write_text(files["batchinput.jsonl"])
    ingest([logs], work, progress=False)
    (logs / "batch_6721f0_output.jsonl").write_text(files["batch_6721f0_output.jsonl"])
    two = ingest([logs], work, progress=False)
    assert _rows(work, root) == joint and two.totals["rows_completed"] == 3


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.usefixtures("link_every_file")
def test_a_half_completed_twice_in_one_run_is_stored_once(tmp_path: Path, shape: str) -> None:
    """The results come in the second run twice, the file and a copy under a name that sorts first
    (its stem no longer matches the requests'): the copy linked to the stored request completes
    it, the other is a repeat, whether or not files are linked. The copy that sorted first used to
    be kept and stored apart as `id~<fp8>` (Anthropic), the stored requests left without results."""
    req, res = SHAPES[shape]
    joint = _joint(tmp_path, (req, res))
    root, logs, work = _split(tmp_path)
    shutil.copy(req, logs / req.name)
    ingest([logs], work, progress=False)
    shutil.copy(res, logs / res.name)
    shutil.copy(res, logs / ("copy_" + res.name))
    two = ingest([logs], work, progress=False)
    assert two.totals["rows_completed"] == len(res.read_text().splitlines()) == two.totals["rows_duplicate"]
    assert _rows(work, root) == joint  # every column, the results from the file whose stem matches
