"""One writer at a time per WORKDIR: an exclusive lock on `WORKDIR/.lock`.

Every command that writes (ingest, audit, dataset, report, weekly, run) holds it for its whole run,
so two commits never race on one store (two concurrent ingests used to both build on the same
version, and the second switch silently dropped the first one's rows).

The lock is a POSIX record lock (`fcntl.lockf`): the kernel drops it when its holder dies, however
it dies (kill -9 included), so a stale lock from a dead process is taken over by the next writer
without any guessing from pids. The file also records the holder (pid, start time, command, host,
WORKDIR path) so a refused writer can name it, and so a record that came with a copy of the WORKDIR
is described as such rather than as a holder that died (`stale_note`). POSIX locks belong to the process, not to forked pool workers,
and closing any descriptor of the file releases them: hence one descriptor per process, held
re-entrantly (a `run` holds it once for all its stages).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import inspect
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.errors import LockedError, MissingInputError
from pipeline.workdir.versions import pid_alive

LOCK_FILE = ".lock"
POLL_SECONDS = 0.2


@dataclass
class _Held:
    fd: int
    depth: int


_held: dict[str, _Held] = {}
_guard = threading.Lock()


def lock_path(workdir: Path) -> Path:
    return Path(workdir) / LOCK_FILE


def read_holder(workdir: Path) -> dict[str, Any]:
    """What the lock file says about its (last) holder; {} when unreadable."""
    held = _held.get(str(Path(workdir).resolve()))
    try:
        if held is not None:  # opening and closing the file again would drop this process's lock
            return json.loads(os.pread(held.fd, 1 << 16, 0) or b"{}")
        return json.loads(lock_path(workdir).read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}


def describe_holder(holder: dict[str, Any]) -> str:
    if not holder:
        return "another process"
    return (
        f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} "
        f"(`{holder.get('command', '?')}`, started {holder.get('started', '?')})"
    )


@contextlib.contextmanager
def writer_lock(
    workdir: Path,
    *,
    wait: bool | float = False,
    command: str | None = None,
    on_wait: Callable[[str], None] | None = None,
    create: bool = False,
) -> Iterator[dict[str, Any]]:
    """Hold the exclusive writer lock of `workdir` for the `with` block.

    Args:
        wait: False: raise LockedError at once when another process holds it; True: wait as long
            as it takes; a number: wait at most that many seconds.
        command: recorded for whoever is refused (default: this process's command line).
        on_wait: called once with a message when this call starts waiting.
        create: create `workdir` when missing (ingest); otherwise a missing one is a MissingInputError.

    Yields the previous holder's record when it was taken over from a process that died
    ({} otherwise). Re-entrant within one process.
    """
    workdir = Path(workdir)
    key = str(workdir.resolve())
    with _guard:
        held = _held.get(key)
        if held is not None:
            held.depth += 1
    if held is not None:
        try:
            yield {}
        finally:
            _release(key)
        return

    if not workdir.is_dir():
        if not create:
            raise MissingInputError(
                f"`{workdir}` does not exist. Run `logaudit ingest LOGS --out {workdir}` first."
            )
        workdir.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path(workdir), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        _acquire(fd, workdir, wait, on_wait)
        stale = _stale_holder(fd)
        _write_holder(fd, workdir, command)
    except BaseException:
        os.close(fd)
        raise
    with _guard:
        _held[key] = _Held(fd, 1)
    try:
        yield stale
    finally:
        _release(key)


def _acquire(fd: int, workdir: Path, wait: bool | float, on_wait: Callable[[str], None] | None) -> None:
    deadline = None if wait is True else time.monotonic() + float(wait or 0)
    announced = False
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError:
            holder = describe_holder(_current_holder(workdir))
            if deadline is not None and time.monotonic() >= deadline:
                hint = "" if wait else " Wait for it to finish, or rerun with --wait to queue behind it."
                raise LockedError(f"`{workdir}` is being written by {holder}.{hint}") from None
            if not announced and on_wait is not None:
                on_wait(f"Waiting for {holder} to finish writing `{workdir}` …")
                announced = True
            time.sleep(POLL_SECONDS)


def _current_holder(workdir: Path) -> dict[str, Any]:
    """The holder's record; it writes it just after locking, so give it a moment to appear."""
    for _ in range(10):
        holder = read_holder(workdir)
        if holder.get("state") == "held":
            return holder
        time.sleep(0.05)
    return holder


def _stale_holder(fd: int) -> dict[str, Any]:
    """The record left by a holder that died without releasing (the kernel released for it)."""
    try:
        data = os.pread(fd, 1 << 16, 0)
        holder = json.loads(data or b"{}")
    except (OSError, ValueError):
        return {}
    return holder if holder.get("pid") and holder.get("state") == "held" else {}


def stale_note(stale: dict[str, Any], workdir: Path) -> str:
    """What to tell the user about the record of a holder that no longer holds the lock: it died,
    or (the lock file names another place, another host, or a live process) the WORKDIR was
    copied, moved or restored while that run was writing it, and the record came with the copy."""
    who = f"pid {stale.get('pid')} (`{stale.get('command', '?')}`, started {stale.get('started', '?')})"
    here = str(Path(workdir).resolve())
    written_at = stale.get("workdir")
    if written_at and written_at != here:
        return (f"Note: the lock record of `{workdir}` was left by {who} writing `{written_at}`: this WORKDIR was "
                f"copied or moved from there while that run was writing. The record is stale here and was replaced; "
                f"this copy holds what was committed before the copy was made.")
    host = stale.get("host")
    if host and host != socket.gethostname():
        return (f"Note: the lock record of `{workdir}` was left by {who} on host `{host}`: this WORKDIR was copied "
                f"from that machine while it was being written there (or `{host}` stopped without releasing it). "
                f"The record is stale here and was replaced.")
    pid = stale.get("pid")
    if isinstance(pid, int) and pid != os.getpid() and pid_alive(pid):
        return (f"Note: the lock record of `{workdir}` names {who}, which is running but does not hold the lock: the "
                f"lock file was copied or restored in place. The record is stale and was replaced.")
    return f"Note: took over the lock left by pid {pid} ({stale.get('command')}), which died."


def _write_holder(fd: int, workdir: Path, command: str | None) -> None:
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "workdir": str(workdir.resolve()),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command or " ".join(["logaudit", *sys.argv[1:]]),
        "state": "held",
    }
    _rewrite(fd, record)


def _rewrite(fd: int, record: dict[str, Any]) -> None:
    data = json.dumps(record).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def _release(key: str) -> None:
    with _guard:
        held = _held[key]
        held.depth -= 1
        if held.depth:
            return
        del _held[key]
    try:
        record = json.loads(os.pread(held.fd, 1 << 16, 0) or b"{}")
        record["state"] = "released"
        _rewrite(held.fd, record)
    except (OSError, ValueError):
        pass  # the record is advisory; the kernel lock is what counts
    finally:
        os.close(held.fd)  # releases the lock


def holds_writer_lock(fn: Callable[..., Any] | None = None, *, create: bool = False) -> Any:
    """Decorate a stage function taking a `workdir` argument: it runs holding the writer lock
    (at once or not at all; the CLI's `--wait` takes the lock first, and this re-enters it).
    `@holds_writer_lock(create=True)` for stages that may start a new WORKDIR (ingest, run)."""
    if fn is None:
        return functools.partial(holds_writer_lock, create=create)
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        workdir = signature.bind(*args, **kwargs).arguments["workdir"]
        with writer_lock(Path(workdir), create=create):
            return fn(*args, **kwargs)

    return wrapper
