"""Every stage output is a versioned unit (issue 17 rows: kill -9 during audit, dataset and report).

A stage builds into `WORKDIR/.stages/<stage>/tmp-<run>/` and switches with one pointer replace, so a
killed run leaves the previous output whole; the report refuses outputs computed from different
store versions; leftovers of killed runs are removed by the next run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.ingest import ingest
from pipeline.workdir.versions import PAUSE_ENV, stage_dir, stage_root, stage_version
from tests.test_workdir_lock import RECORD, ROOT, write_logs


def kill_when(cmd: list[str], appears: Path, pattern: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Run `logaudit cmd` and SIGKILL it as soon as a file matching `pattern` appears in `appears`."""
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", *cmd], cwd=ROOT, env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if appears.is_dir() and any(appears.glob(pattern)):
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the command finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return proc


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A WORKDIR with a store (v1) and its audit, then one more ingest (store v2)."""
    from audit import run_audits

    tmp = tmp_path_factory.mktemp("versions")
    write_logs(tmp / "a", "a", 120)
    write_logs(tmp / "b", "b", 30)
    work = tmp / "w"
    ingest([tmp / "a"], work, progress=False)
    run_audits(work)
    ingest([tmp / "b"], work, progress=False)
    return work


def copy_workdir(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst, symlinks=True)
    return dst


def test_kill_during_audit_keeps_the_old_audit_whole_and_report_refuses_the_mix(audited: Path, tmp_path: Path) -> None:
    work = copy_workdir(audited, tmp_path / "w")
    before = (stage_dir(work, "audit") / "summary.json").read_bytes()
    old_version = stage_dir(work, "audit").name
    kill_when(["audit", str(work)], stage_root(work, "audit"), "tmp-*")
    assert stage_dir(work, "audit").name == old_version
    assert (work / "audit" / "summary.json").read_bytes() == before  # nothing half new
    assert stage_version(work, "audit")["store"]["version"] == "v000001"

    result = CliRunner().invoke(cli, ["report", str(work)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "`audit` was computed from store v000001, the store is now v000002 (rerun `logaudit audit`)" in result.output
    assert CliRunner().invoke(cli, ["report", str(work), "--allow-mixed-versions"]).exit_code == 0

    assert CliRunner().invoke(cli, ["audit", str(work)]).exit_code == 0
    assert not list(stage_root(work, "audit").glob("tmp-*"))  # the killed run's folder is gone
    assert sorted(p.name for p in stage_root(work, "audit").iterdir()) == ["CURRENT", stage_dir(work, "audit").name]
    assert stage_version(work, "audit")["store"]["version"] == "v000002"
    assert CliRunner().invoke(cli, ["report", str(work)]).exit_code == 0


def test_dataset_of_an_older_store_is_refused(audited: Path, tmp_path: Path) -> None:
    from audit import run_audits
    from pipeline.dataset import build_dataset
    from pipeline.errors import ReportError
    from pipeline.report import render_report

    work = copy_workdir(audited, tmp_path / "w")
    run_audits(work)
    build_dataset(work)
    render_report(work)  # consistent: store v2, audit and dataset of v2
    write_logs(tmp_path / "c", "c", 5)
    ingest([tmp_path / "c"], work, progress=False)
    run_audits(work)  # the dataset is now of store v2, audit of v3
    with pytest.raises(ReportError, match=r"`dataset` was computed from store v000002, the store is now v000003"):
        render_report(work)
    unchanged = ingest([tmp_path / "c"], work, progress=False)  # adds nothing: same store content
    assert unchanged.totals["rows_written"] == 0
    build_dataset(work)
    render_report(work)


def test_kill_during_dataset_leaves_no_leftovers(audited: Path, tmp_path: Path) -> None:
    work = copy_workdir(audited, tmp_path / "w")
    legacy = [work / f".dataset.tmp-{2**22 + 7}", work / f".dataset.work-{2**22 + 7}"]  # an older version's, dead pid
    for d in legacy:
        d.mkdir()
        (d / "x").write_bytes(b"x" * 1000)
    kill_when(["dataset", str(work)], stage_root(work, "dataset"), "tmp-work-*/*")
    assert list(stage_root(work, "dataset").glob("tmp-*"))  # what the kill left behind
    assert not (work / "dataset").exists()
    result = CliRunner().invoke(cli, ["dataset", str(work)])
    assert result.exit_code == 0, result.output
    assert not list(stage_root(work, "dataset").glob("tmp-*")) and not any(d.exists() for d in legacy)
    assert (work / "dataset" / "train.jsonl").is_file()


def test_report_killed_half_way_keeps_all_three_files_of_one_version(audited: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.report import render_report, stage

    work = copy_workdir(audited, tmp_path / "w")
    render_report(work, allow_mixed_versions=True)
    before = {n: (work / "report" / n).read_bytes() for n in ("report.json", "report.md", "report.html")}

    def die(*args: object, **kwargs: object) -> str:
        raise KeyboardInterrupt  # stands for the process dying after report.json and report.md

    monkeypatch.setattr(stage, "render_html", die)
    with pytest.raises(KeyboardInterrupt):
        render_report(work, allow_mixed_versions=True)
    assert {n: (work / "report" / n).read_bytes() for n in before} == before
    assert not list(stage_root(work, "report").glob("tmp-*"))


def test_report_killed_by_sigkill_between_two_files_keeps_the_previous_version_whole(audited: Path,
                                                                                     tmp_path: Path) -> None:
    """A real `kill -9` of `logaudit report` after it wrote report.json and report.md of the new
    version and before report.html (the process pauses there: `versions.pause_point`). Before
    versioned outputs this left report.json and report.md new and report.html missing."""
    work = copy_workdir(audited, tmp_path / "w")
    assert CliRunner().invoke(cli, ["report", str(work), "--allow-mixed-versions"]).exit_code == 0
    names = ("report.json", "report.md", "report.html")
    before = {n: (work / "report" / n).read_bytes() for n in names}
    old_version = stage_dir(work, "report").name
    kill_when(["report", str(work), "--allow-mixed-versions"], stage_root(work, "report"), "tmp-*/report.md",
              env={PAUSE_ENV: "report.md"})
    (left,) = stage_root(work, "report").glob("tmp-*")  # the killed run's half-built version
    assert sorted(p.name for p in left.iterdir()) == ["report.json", "report.md"]
    assert stage_dir(work, "report").name == old_version
    assert {n: (work / "report" / n).read_bytes() for n in names} == before  # the previous version, whole

    result = CliRunner().invoke(cli, ["report", str(work), "--allow-mixed-versions"])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    assert not list(stage_root(work, "report").glob("tmp-*"))  # the leftover is gone
    assert stage_dir(work, "report").name != old_version
    assert all((work / "report" / n).stat().st_size for n in names)


def test_report_and_weekly_share_the_report_folder(audited: Path, tmp_path: Path) -> None:
    from pipeline.report import render_report, weekly_report

    work = copy_workdir(audited, tmp_path / "w")
    render_report(work, allow_mixed_versions=True)
    weekly_report(work, allow_mixed_versions=True)
    names = {p.name for p in (work / "report").iterdir()}
    assert {"report.json", "report.md", "report.html", "weekly.json", "weekly.md"} <= names
    render_report(work, allow_mixed_versions=True)
    assert (work / "report" / "weekly.md").is_file()  # carried over into the new version


def test_weekly_on_a_store_of_one_week_says_no_previous_week(tmp_path: Path) -> None:
    from audit import run_audits

    logs = tmp_path / "a"
    logs.mkdir()
    with open(logs / "one_week.jsonl", "w") as f:
        for i in range(40):
            f.write(RECORD % (f"r{i}", 10 + i % 5, i, i) + "\n")  # 2026-07-10 .. 2026-07-14
    work = tmp_path / "w"
    ingest([logs], work, progress=False)
    run_audits(work)
    result = CliRunner().invoke(cli, ["weekly", str(work)])
    assert result.exit_code == 0, result.output
    assert "no previous week" in result.output and "REGRESSION" not in result.output
    weekly = json.loads((work / "report" / "weekly.json").read_text())
    assert weekly["no_previous_week"] is True and weekly["regressions"] == []
