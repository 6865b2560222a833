"""One writer at a time per WORKDIR (issue 17, row 1: two ingests into one WORKDIR lost a run's rows).

Real processes throughout: `logaudit` subprocesses racing on one WORKDIR, a lock holder killed
with SIGKILL, and the refusal message a second writer prints.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipeline.workdir.store import connect_store

RECORD = (
    '{"id":"%s","timestamp":"2026-07-%02dT09:00:00Z","provider":"openai","endpoint":"/v1/chat/completions",'
    '"request":{"model":"gpt-4o","messages":[{"role":"user","content":"hi %s"}]},'
    '"response":{"id":"chatcmpl-%s","object":"chat.completion","created":1784020323,"model":"gpt-4o",'
    '"choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],'
    '"usage":{"prompt_tokens":9,"completion_tokens":1}}}'
)
LOGAUDIT = [sys.executable, "-m", "pipeline"]
ROOT = Path(__file__).resolve().parent.parent


def write_logs(folder: Path, prefix: str, n: int) -> set[str]:
    folder.mkdir(parents=True)
    ids = {f"{prefix}-{i}" for i in range(n)}
    with open(folder / f"{prefix}.jsonl", "w", encoding="utf-8") as f:
        for i, rid in enumerate(sorted(ids)):
            f.write(RECORD % (rid, 1 + i % 28, rid, rid) + "\n")
    return ids


def stored_ids(workdir: Path) -> list[str]:
    con = connect_store(workdir)
    try:
        return [r for (r,) in con.execute("SELECT request_id FROM requests").fetchall()]
    finally:
        con.close()


def logaudit(*args: str | Path) -> subprocess.Popen:
    return subprocess.Popen(
        [*LOGAUDIT, *map(str, args)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out + err


@pytest.mark.parametrize("existing", [False, True], ids=["new-store", "existing-store"])
def test_two_concurrent_ingests_keep_every_row(tmp_path: Path, existing: bool) -> None:
    """Two real `logaudit ingest --wait` processes on one WORKDIR, several times: no row is lost."""
    a = write_logs(tmp_path / "a", "a", 1500)
    b = write_logs(tmp_path / "b", "b", 1000)
    base = write_logs(tmp_path / "base", "base", 500) if existing else set()
    for trial in range(4):
        work = tmp_path / f"w{trial}"
        if existing:
            assert finish(logaudit("ingest", tmp_path / "base", "--out", work))[0] == 0
        first = logaudit("ingest", tmp_path / "a", "--out", work, "--wait")
        second = logaudit("ingest", tmp_path / "b", "--out", work, "--wait")
        results = [finish(first), finish(second)]
        assert [rc for rc, _ in results] == [0, 0], results
        assert all("Traceback" not in text for _, text in results)
        ids = stored_ids(work)
        assert len(ids) == len(a) + len(b) + len(base), f"trial {trial}: {len(ids)} rows"
        assert set(ids) == a | b | base


def test_concurrent_ingest_without_wait_is_refused_or_serialized(tmp_path: Path) -> None:
    """Without --wait a writer that finds the lock taken exits 1 naming the holder; nothing is lost
    either way: the store holds exactly the runs that reported success."""
    a = write_logs(tmp_path / "a", "a", 1500)
    b = write_logs(tmp_path / "b", "b", 1500)
    for trial in range(3):
        work = tmp_path / f"w{trial}"
        procs = {"a": logaudit("ingest", tmp_path / "a", "--out", work), "b": logaudit("ingest", tmp_path / "b", "--out", work)}
        results = {k: finish(p) for k, p in procs.items()}
        expected: set[str] = set()
        for k, (rc, text) in results.items():
            assert "Traceback" not in text
            if rc == 0:
                expected |= a if k == "a" else b
            else:
                assert rc == 1 and "is being written by pid" in text and "--wait" in text, text
        assert expected, results
        assert set(stored_ids(work)) == expected and len(stored_ids(work)) == len(expected)


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from pipeline.workdir.lock import writer_lock
    with writer_lock(Path(sys.argv[1]), command="holder-for-test", create=True):
        print("held", flush=True)
        time.sleep(600)
    """
)


def start_holder(work: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(work)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_second_writer_names_the_holder_and_waits(tmp_path: Path) -> None:
    logs = tmp_path / "a"
    ids = write_logs(logs, "a", 50)
    work = tmp_path / "w"
    holder = start_holder(work)
    try:
        for command in (["ingest", logs, "--out", work], ["audit", work], ["dataset", work], ["report", work], ["weekly", work]):
            rc, text = finish(logaudit(*command))
            assert rc == 1, (command, text)
            assert f"pid {holder.pid}" in text and "holder-for-test" in text and "Traceback" not in text
        waiting = logaudit("ingest", logs, "--out", work, "--wait")
        assert waiting.stderr is not None
        assert f"Waiting for pid {holder.pid}" in waiting.stderr.readline()  # queued behind the holder
        time.sleep(0.5)
        assert waiting.poll() is None
        holder.terminate()
        holder.wait()
        rc, text = finish(waiting)
        assert rc == 0, text
    finally:
        holder.kill()
        holder.wait()
    assert set(stored_ids(work)) == ids


def test_lock_of_a_killed_writer_is_taken_over(tmp_path: Path) -> None:
    logs = tmp_path / "a"
    ids = write_logs(logs, "a", 50)
    work = tmp_path / "w"
    holder = start_holder(work)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    rc, text = finish(logaudit("ingest", logs, "--out", work))
    assert rc == 0, text
    assert f"took over the lock left by pid {holder.pid}" in text
    assert set(stored_ids(work)) == ids


def test_lock_is_reentrant_and_released(tmp_path: Path) -> None:
    from pipeline.errors import LockedError
    from pipeline.workdir.lock import read_holder, writer_lock

    work = tmp_path / "w"
    with writer_lock(work, create=True), writer_lock(work):
        assert read_holder(work)["pid"] == os.getpid()
    assert read_holder(work)["state"] == "released"
    holder = start_holder(work)
    try:
        with pytest.raises(LockedError, match=f"pid {holder.pid}"), writer_lock(work, wait=0.5):
            pass
    finally:
        holder.kill()
        holder.wait()
    with writer_lock(work):  # the kernel released the killed holder's lock
        pass
