"""`logaudit eval` outputs are a versioned unit like every stage output (issue 17): it holds the
WORKDIR writer lock, builds the next version of `WORKDIR/eval` (its candidate new, the others and
prompts.jsonl carried) and switches with one pointer replace; each summary names the dataset and
store versions it was scored on; the report refuses a candidate scored on another eval split."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.evaluate import evaluate, export_prompts
from pipeline.evaluate.examples import read_eval_split
from pipeline.workdir.paths import workdir_paths
from pipeline.workdir.versions import PAUSE_ENV, VERSION_FILE, stage_dir, stage_root, stage_version
from tests.test_stage_versions import kill_when
from tests.test_workdir_lock import finish, logaudit, start_holder, waits_then_runs, write_logs


def predictions(workdir: Path, path: Path, wrong: int = 0) -> Path:
    """Production's own answers for the current eval split, the first `wrong` ones replaced."""
    lines = []
    for i, ex in enumerate(read_eval_split(workdir).examples):
        answer = "something else entirely" if i < wrong else (ex.reference.content or "")
        lines.append(json.dumps({"id": ex.example_id, "answer": answer}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A WORKDIR with a store, its audit and a dataset (v000001) holding an eval split."""
    from audit import run_audits
    from pipeline.dataset import build_dataset
    from pipeline.ingest import ingest

    tmp = tmp_path_factory.mktemp("eval_versions")
    write_logs(tmp / "logs", "a", 120)
    ingest([tmp / "logs"], tmp / "w", progress=False)
    run_audits(tmp / "w")
    build_dataset(tmp / "w")
    assert len(read_eval_split(tmp / "w").examples) >= 20
    return tmp / "w"


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


def test_eval_outputs_are_one_versioned_unit_naming_their_inputs(built: Path, tmp_path: Path) -> None:
    work = copy(built, tmp_path / "w")
    evaluate(work, "ft", predictions=predictions(work, tmp_path / "ft.jsonl"))
    first = stage_dir(work, "eval")
    evaluate(work, "base", predictions=predictions(work, tmp_path / "base.jsonl", wrong=5))
    prompts = export_prompts(work)
    assert prompts == work / "eval" / "prompts.jsonl" and prompts.is_file()
    # Three runs, three versions; the last holds both candidates and the prompts; older ones removed.
    current = stage_dir(work, "eval")
    assert current.name == "v000003" and not first.exists()
    assert sorted(p.name for p in current.iterdir()) == [VERSION_FILE, "base", "ft", "prompts.jsonl"]
    assert sorted(p.name for p in stage_root(work, "eval").iterdir()) == ["CURRENT", "v000003"]
    assert (work / "eval").resolve() == current.resolve()  # the user's view
    record = stage_version(work, "eval")
    assert record["store"]["version"] == "v000001" and record["inputs"] == {"dataset": "v000001"}
    summary = json.loads((work / "eval" / "ft" / "summary.json").read_text(encoding="utf-8"))
    assert summary["inputs"]["dataset_version"] == "v000001" and summary["inputs"]["store_version"] == "v000001"
    # Re-evaluating one candidate replaces it alone.
    ft_before = (work / "eval" / "ft" / "summary.json").read_bytes()
    evaluate(work, "base", predictions=predictions(work, tmp_path / "base.jsonl", wrong=9))
    assert (work / "eval" / "ft" / "summary.json").read_bytes() == ft_before
    assert (work / "eval" / "prompts.jsonl").is_file()


def test_eval_killed_by_sigkill_leaves_the_previous_evaluations_whole(built: Path, tmp_path: Path) -> None:
    """A real kill -9 after the new summary.json and before eval.md (`versions.pause_point`)."""
    work = copy(built, tmp_path / "w")
    evaluate(work, "ft", predictions=predictions(work, tmp_path / "ft.jsonl"))
    evaluate(work, "base", predictions=predictions(work, tmp_path / "base.jsonl", wrong=5))
    before = {p.relative_to(work / "eval"): p.read_bytes() for p in (work / "eval").rglob("*") if p.is_file()}
    worse = predictions(work, tmp_path / "worse.jsonl", wrong=15)
    kill_when(["eval", str(work), "--candidate", "ft", "--predictions", str(worse)], stage_root(work, "eval"),
              "tmp-*/ft/summary.json", env={PAUSE_ENV: "summary.json"})
    assert list(stage_root(work, "eval").glob("tmp-*"))  # the killed run's half-built version
    after = {p.relative_to(work / "eval"): p.read_bytes() for p in (work / "eval").rglob("*") if p.is_file()}
    assert after == before  # both candidates exactly as before
    result = CliRunner().invoke(cli, ["eval", str(work), "--candidate", "ft", "--predictions", str(worse)])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    assert not list(stage_root(work, "eval").glob("tmp-*"))  # the leftover removed
    assert (work / "eval" / "base" / "summary.json").read_bytes() == before[Path("base/summary.json")]
    assert (work / "eval" / "ft" / "summary.json").read_bytes() != before[Path("ft/summary.json")]


def test_eval_takes_the_writer_lock(built: Path, tmp_path: Path) -> None:
    work = copy(built, tmp_path / "w")
    answers = predictions(work, tmp_path / "ft.jsonl")
    holder = start_holder(work)
    try:
        for command in (["eval", work, "--candidate", "ft", "--predictions", answers], ["eval", work, "--prompts"]):
            rc, text = finish(logaudit(*command))
            assert rc == 1 and f"is being written by pid {holder.pid}" in text and "Traceback" not in text, text
        assert not (work / "eval").exists()
        waits_then_runs(holder, "eval", work, "--candidate", "ft", "--predictions", answers, "--wait")
    finally:
        holder.kill()
        holder.wait()
    assert (work / "eval" / "ft" / "summary.json").is_file()


def test_report_refuses_an_eval_scored_on_another_dataset_version(built: Path, tmp_path: Path) -> None:
    from pipeline.dataset import build_dataset

    work = copy(built, tmp_path / "w")
    evaluate(work, "ft", predictions=predictions(work, tmp_path / "ft.jsonl"))
    assert CliRunner().invoke(cli, ["report", str(work)]).exit_code == 0
    build_dataset(work, {"dataset": {"seed": 5}})  # another eval split: dataset v000002
    result = CliRunner().invoke(cli, ["report", str(work)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output == (
        f"Error: Inputs from different versions: `eval/ft` was scored on the eval split of dataset v000001, the "
        f"dataset is now v000002 (rerun `logaudit eval {work} --candidate ft …`). Or pass --allow-mixed-versions "
        "to report them anyway.\n")
    mixed = CliRunner().invoke(cli, ["report", str(work), "--allow-mixed-versions"])
    assert mixed.exit_code == 0, mixed.output
    (entry,) = json.loads((work / "report" / "report.json").read_text(encoding="utf-8"))["evaluations"]
    assert entry["candidate"] == "ft" and entry["stale"] is True
    # Scored again on the current split: reported. A dataset rebuilt with the same split (v000003)
    # does not invalidate it: the split it was scored on is the one the dataset holds.
    evaluate(work, "ft", predictions=predictions(work, tmp_path / "ft.jsonl"))
    build_dataset(work, {"dataset": {"seed": 5}})
    assert stage_dir(work, "dataset").name == "v000003"
    result = CliRunner().invoke(cli, ["report", str(work)])
    assert result.exit_code == 0, result.output


def test_a_workdir_evaluated_before_versions_is_migrated(built: Path, tmp_path: Path) -> None:
    """A plain `WORKDIR/eval/` (with a candidate, its endpoint answer cache and a user's file) is
    carried into the first version; the cache moves beside the versions; nothing is lost."""
    work = copy(built, tmp_path / "w")
    legacy = work / "eval"
    (legacy / "old").mkdir(parents=True)
    (legacy / "old" / "summary.json").write_text(json.dumps({"candidate": "old", "tasks": []}), encoding="utf-8")
    (legacy / "old" / "answers.jsonl").write_text('{"example_id": "x"}\n', encoding="utf-8")
    (legacy / "my_predictions.jsonl").write_text("mine\n", encoding="utf-8")
    evaluate(work, "ft", predictions=predictions(work, tmp_path / "ft.jsonl"))
    assert (work / "eval").is_symlink() or stage_dir(work, "eval") != legacy
    assert (work / "eval" / "my_predictions.jsonl").read_text(encoding="utf-8") == "mine\n"
    assert json.loads((work / "eval" / "old" / "summary.json").read_text(encoding="utf-8"))["candidate"] == "old"
    assert workdir_paths(work).eval_answers("old").read_text(encoding="utf-8") == '{"example_id": "x"}\n'
    assert not (work / "eval" / "old" / "answers.jsonl").exists()
