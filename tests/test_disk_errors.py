"""Disk full, read-only and unwritable paths (issue 17 rows): one line naming the path and what to
do, exit code 1, no traceback, earlier results untouched.

Real processes with real OS limits, portable to a root CI container without privileged mounts:
"disk full" is RLIMIT_FSIZE (every write beyond the limit fails with EFBIG, the same code path as
ENOSPC), and "read-only" is chmod with root's permission-override capabilities dropped from the
child's bounding set (skipped, with the reason, where the kernel refuses that).
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.errors import disk_error
from pipeline.workdir.versions import stage_dir, stage_root
from tests.test_workdir_lock import ROOT, stored_ids, write_logs

PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER = 1, 2, 3


def logaudit(args: list[str], preexec: object = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, capture_output=True, text=True,
                          preexec_fn=preexec, env=env, timeout=600)  # type: ignore[arg-type]


def file_size_limit(limit: int):  # noqa: ANN201
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def without_root_override() -> None:
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER):
            if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                os._exit(97)


def permissions_apply(tmp_path: Path) -> bool:
    probe = tmp_path / "probe"
    probe.mkdir()
    probe.chmod(0o555)
    try:
        proc = subprocess.run([sys.executable, "-c", f"open({str(probe / 'x')!r}, 'w')"], preexec_fn=without_root_override,
                              capture_output=True)
    finally:
        probe.chmod(0o755)
    return proc.returncode not in (0, 97)


@pytest.fixture(scope="module")
def full_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A WORKDIR with every stage's output (store v1), and more logs to ingest."""
    from pipeline.run import run_all

    tmp = tmp_path_factory.mktemp("disk")
    write_logs(tmp / "a", "a", 300)
    write_logs(tmp / "more", "more", 3000)
    run_all([tmp / "a"], tmp / "w", progress=False)
    write_predictions(tmp / "w", tmp / "predictions.jsonl")
    return tmp / "w"


def write_predictions(work: Path, path: Path) -> None:
    """Production's answers as a candidate's, for `logaudit eval` (a writing command too)."""
    import json

    from pipeline.evaluate.examples import read_eval_split

    examples = read_eval_split(work).examples
    assert examples
    path.write_text("".join(json.dumps({"id": ex.example_id, "answer": ex.reference.content or ""}) + "\n"
                            for ex in examples), encoding="utf-8")


def command_args(command: str, full_workdir: Path, work: Path) -> list[str]:
    logs, predictions = str(full_workdir.parent / "more"), str(full_workdir.parent / "predictions.jsonl")
    return {"ingest": ["ingest", logs, "--out", str(work)], "run": ["run", logs, "--out", str(work)],
            "eval": ["eval", str(work), "--candidate", "ft", "--predictions", predictions]}.get(command, [command, str(work)])


def snapshot(work: Path) -> dict[str, bytes]:
    return {str(p.relative_to(work)): p.read_bytes() for p in sorted(work.rglob("*"))
            if p.is_file() and not p.is_symlink() and p.name != ".lock"}


@pytest.mark.parametrize("command", ["ingest", "audit", "dataset", "report", "eval"])
def test_disk_full_is_one_line_and_leaves_results_untouched(full_workdir: Path, tmp_path: Path, command: str) -> None:
    work = tmp_path / "w"
    shutil.copytree(full_workdir, work, symlinks=True)
    before = snapshot(work)
    proc = logaudit(command_args(command, full_workdir, work), preexec=file_size_limit(3_000))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith(f"Error: Cannot write `{work}`: File too large;")
    assert "Earlier results are unchanged." in proc.stderr
    assert snapshot(work) == before  # nothing half new, nothing left behind
    for stage in ("audit", "dataset", "report", "eval"):
        assert not list(stage_root(work, stage).glob("tmp-*"))
    assert not list((work / ".store").glob("tmp-*"))
    assert len(stored_ids(work)) == 300


def test_disk_errors_map_to_one_line_each() -> None:
    full = disk_error(OSError(errno.ENOSPC, "No space left on device", "/data/out/x.parquet"))
    assert str(full) == ("Cannot write `/data/out/x.parquet`: No space left on device; the disk is full: free space "
                         "(or use --out on another disk) and rerun. Earlier results are unchanged.")
    duck = disk_error(RuntimeError('IO Error: Could not write file "/d/x.tmp": No space left on device'), "/d")
    assert duck is not None and str(duck).startswith("Cannot write `/d`: No space left on device; the disk is full")
    ro = disk_error(OSError(errno.EROFS, "Read-only file system", "/mnt/ro/.lock"))
    assert ro is not None and "use --out on a writable disk" in str(ro)
    assert disk_error(ValueError("something else")) is None


@pytest.mark.parametrize("command", ["ingest", "audit", "dataset", "report", "weekly", "run", "eval"])
def test_read_only_workdir_is_one_line(full_workdir: Path, tmp_path: Path, command: str) -> None:
    if not permissions_apply(tmp_path):
        pytest.skip("cannot drop root's permission override here (no CAP_SETPCAP): chmod would not bind")
    work = tmp_path / "w"
    shutil.copytree(full_workdir, work, symlinks=True)
    before = snapshot(work)
    args = command_args(command, full_workdir, work)
    for p in [work, *work.rglob("*")]:
        if not p.is_symlink():
            p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        proc = logaudit(args, preexec=without_root_override)
    finally:
        for p in [work, *work.rglob("*")]:
            if not p.is_symlink():
                p.chmod(p.stat().st_mode | stat.S_IWUSR)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert f"Error: Cannot write `{work / '.lock'}`: Permission denied; permission denied: fix the permissions" in proc.stderr
    assert snapshot(work) == before


def test_read_only_parent_is_one_line(tmp_path: Path) -> None:
    if not permissions_apply(tmp_path):
        pytest.skip("cannot drop root's permission override here (no CAP_SETPCAP): chmod would not bind")
    write_logs(tmp_path / "logs", "a", 5)
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        proc = logaudit(["ingest", str(tmp_path / "logs"), "--out", str(parent / "w")], preexec=without_root_override)
    finally:
        parent.chmod(0o755)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (f"Error: Cannot write `{parent / 'w'}`: Permission denied; permission denied: fix the "
                                   "permissions or use --out somewhere you can write. Earlier results are unchanged.")


def test_unwritable_home_and_no_cache_dir_still_audits(tmp_path: Path) -> None:
    from pipeline.tokens import cache_dir

    write_logs(tmp_path / "logs", "a", 20)
    assert logaudit(["ingest", str(tmp_path / "logs"), "--out", str(tmp_path / "w")]).returncode == 0
    blocker = tmp_path / "home-is-a-file"
    blocker.write_text("x")  # nothing can be created below a file, not even by root
    env = {k: v for k, v in os.environ.items() if k not in ("LOGAUDIT_CACHE_DIR", "XDG_CACHE_HOME", "TIKTOKEN_CACHE_DIR")}
    env["HOME"] = str(blocker / "home")
    env["TMPDIR"] = str(tmp_path / "tmp")
    (tmp_path / "tmp").mkdir()
    proc = logaudit(["audit", str(tmp_path / "w")], env=env)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "tmp" / f"llm-log-audit-{os.getuid()}" / "tiktoken").is_dir()  # the fallback
    assert (stage_dir(tmp_path / "w", "audit") / "summary.json").is_file()
    env["LOGAUDIT_CACHE_DIR"] = str(blocker / "cache")  # asked for explicitly: an error, not a silent fallback
    proc = logaudit(["audit", str(tmp_path / "w")], env=env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"Cannot write the tokenizer cache: `{blocker / 'cache' / 'tiktoken'}`" in proc.stderr
    assert "Set LOGAUDIT_CACHE_DIR to a writable folder." in proc.stderr
    assert cache_dir()  # the in-process default is untouched


def test_debug_keeps_the_traceback(tmp_path: Path) -> None:
    plain = logaudit(["audit", str(tmp_path / "nothing")])
    debug = logaudit(["--debug", "audit", str(tmp_path / "nothing")])
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    assert plain.stderr.strip() == f"Error: `{tmp_path / 'nothing'}` does not exist. Run `logaudit ingest LOGS --out {tmp_path / 'nothing'}` first."
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    assert "MissingInputError" in debug.stderr
