"""Issue 17 rows whose behaviour is tested through the Python API elsewhere, run once more through
the real command line (a subprocess): the exit code, the line that tells the user what happened,
and no traceback without `--debug`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import zstandard

from tests.test_hostile_inputs import lines
from tests.test_sanity_bounds import ENVELOPE, PLANTED
from tests.test_workdir_lock import ROOT, stored_ids, write_logs


def logaudit(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)


def no_traceback(proc: subprocess.CompletedProcess) -> str:
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text, text
    return text


def test_utf16_file_through_the_cli(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "windows.jsonl").write_bytes(lines(4).encode("utf-16"))
    proc = logaudit("ingest", logs, "--out", tmp_path / "w")
    assert proc.returncode == 0 and "4 ingested + 0 skipped + 0 rejected" in no_traceback(proc)


def test_truncated_zstd_through_the_cli(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    cut = zstandard.ZstdCompressor(level=1).compress(lines(2000).encode())
    (logs / "cut.jsonl.zst").write_bytes(cut[: len(cut) // 2])
    proc = logaudit("ingest", logs, "--out", tmp_path / "w")
    assert proc.returncode == 0 and "1 unreadable" in no_traceback(proc)
    strict = logaudit("ingest", logs, "--out", tmp_path / "w2", "--strict")
    assert strict.returncode == 1 and f"1 file(s) unreadable or cut short (`{logs / 'cut.jsonl.zst'}`" in no_traceback(strict)


def test_workdir_copied_without_symlinks_through_the_cli(tmp_path: Path) -> None:
    first, more = write_logs(tmp_path / "a", "a", 10), write_logs(tmp_path / "b", "b", 10)
    assert logaudit("ingest", tmp_path / "a", "--out", tmp_path / "w").returncode == 0
    shutil.copytree(tmp_path / "w", tmp_path / "copy")  # every link becomes a plain folder or file
    proc = logaudit("ingest", tmp_path / "b", "--out", tmp_path / "copy")
    assert proc.returncode == 0, no_traceback(proc)
    assert set(stored_ids(tmp_path / "copy")) == first | more


def test_absurd_values_through_run_are_warned_about(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    write_logs(logs, "ok", 40)
    with open(logs / "planted.jsonl", "w", encoding="utf-8") as f:
        for rid in ("tok_absurd", "ts_epoch"):
            ts, prompt = PLANTED[rid]
            f.write(ENVELOPE % (rid, ts, rid, rid, prompt) + "\n")
    proc = logaudit("run", logs, "--out", tmp_path / "w")
    assert proc.returncode == 0, no_traceback(proc)
    # 2**62 tokens (also a cost above the ceiling) and a timestamp at epoch 86400
    assert "sanity: 3 warning(s) (implausible tokens, timestamps or costs), listed in the report" in proc.stdout
