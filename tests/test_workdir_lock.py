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
        waits_then_runs(holder, "ingest", logs, "--out", work, "--wait")
    finally:
        holder.kill()
        holder.wait()
    assert set(stored_ids(work)) == ids


def waits_then_runs(holder: subprocess.Popen, *command: str | Path) -> None:
    """`logaudit *command` (with --wait) queues behind `holder`, then runs once the holder ends."""
    waiting = logaudit(*command)
    assert waiting.stderr is not None
    assert f"Waiting for pid {holder.pid}" in waiting.stderr.readline()  # queued behind the holder
    time.sleep(0.5)
    assert waiting.poll() is None
    holder.terminate()
    holder.wait()
    rc, text = finish(waiting)
    assert rc == 0, text


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


def test_a_workdir_copied_while_locked_says_so_not_that_the_holder_died(tmp_path: Path) -> None:
    """The copy carries the lock record of a run that is alive and still writing the original:
    the note names the original location (it used to say the holder "died")."""
    import shutil

    logs = tmp_path / "a"
    ids = write_logs(logs, "a", 20)
    work = tmp_path / "w"
    holder = start_holder(work)
    try:
        copy = tmp_path / "copy"
        shutil.copytree(work, copy, symlinks=True)
        rc, text = finish(logaudit("ingest", logs, "--out", copy))
        assert rc == 0, text
        assert holder.poll() is None  # the holder is alive: "died" would be false
        assert "which died" not in text and "Traceback" not in text
        assert (f"the lock record of `{copy}` was left by pid {holder.pid} (`holder-for-test`" in text
                and f"writing `{work.resolve()}`: this WORKDIR was copied or moved from there" in text), text
    finally:
        holder.kill()
        holder.wait()
    assert set(stored_ids(copy)) == ids


def _planted_record(work: Path, **fields: object) -> None:
    import json
    import socket

    work.mkdir(parents=True, exist_ok=True)
    record = {"pid": 4_000_000, "host": socket.gethostname(), "workdir": str(work.resolve()),
              "started": "2026-07-01T00:00:00+00:00", "command": "logaudit audit w", "state": "held", **fields}
    (work / ".lock").write_text(json.dumps(record), encoding="utf-8")


@pytest.mark.parametrize("case", ["other-host", "live-pid-in-place", "dead-pid", "before-paths-were-recorded"])
def test_a_stale_lock_record_is_described_as_what_it_is(tmp_path: Path, case: str) -> None:
    logs = tmp_path / "a"
    write_logs(logs, "a", 5)
    work = tmp_path / "w"
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # runs, holds no lock
    try:
        if case == "other-host":
            _planted_record(work, host="build-server-7")
        elif case == "live-pid-in-place":
            _planted_record(work, pid=alive.pid)
        elif case == "dead-pid":
            _planted_record(work)  # pid 4,000,000: above any pid_max
        else:
            _planted_record(work, workdir=None)
        rc, text = finish(logaudit("ingest", logs, "--out", work))
    finally:
        alive.kill()
        alive.wait()
    assert rc == 0 and "Traceback" not in text, text
    expected = {
        "other-host": "left by pid 4000000 (`logaudit audit w`, started 2026-07-01T00:00:00+00:00) on host "
                      "`build-server-7`: this WORKDIR was copied from that machine",
        "live-pid-in-place": f"names pid {alive.pid} (`logaudit audit w`, started 2026-07-01T00:00:00+00:00), which is "
                             "running but does not hold the lock: the lock file was copied or restored in place",
        "dead-pid": "took over the lock left by pid 4000000 (logaudit audit w), which died",
        "before-paths-were-recorded": "took over the lock left by pid 4000000 (logaudit audit w), which died",
    }[case]
    assert expected in text, text
