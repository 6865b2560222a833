"""Versioned outputs: build a complete new version beside the current one, then switch with one
atomic replace of a small pointer file.

    ROOT/v000007/...        one complete version (never changed once named)
    ROOT/CURRENT            "v000007\\n": the commit point, replaced with os.replace

The commit point is a regular file rather than a symlink, as table formats (Delta Lake's log,
Iceberg's metadata pointer) do, so a WORKDIR copied by any tool (shutil.copytree, zip, rsync
without -l, sync services) or kept on a file system without symlinks keeps working. A crash at
any moment leaves CURRENT naming a complete version. Older WORKDIRs whose commit point was the
symlink `ROOT/current` are still read, and migrated on their next write.

Used for the store (`WORKDIR/.store`) and for every stage's output (`WORKDIR/.stages/<stage>`,
see `StageOutput`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

POINTER = "CURRENT"
LEGACY_POINTER = "current"  # a symlink to the version (before the pointer file); a plain folder once copied
VERSION_PREFIX = "v"
TMP_PREFIX = "tmp-"


def run_token() -> str:
    """Unique per run; ends with the pid so cleanup can tell a live run's temporary folder."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}-{os.getpid()}"


def read_pointer(root: Path) -> Path | None:
    """The current version folder under `root`, or None when nothing was committed yet."""
    root = Path(root)
    try:
        name = (root / POINTER).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        name = ""
    if name:
        version = root / name
        return version if "/" not in name and version.is_dir() else None
    legacy = root / LEGACY_POINTER
    if legacy.is_symlink():
        target = legacy.resolve()
        return target if target.is_dir() else None
    return legacy if legacy.is_dir() else None  # a copy that turned the symlink into a folder


def next_version(root: Path) -> str:
    numbers = (int(p.name[1:]) for p in Path(root).glob(f"{VERSION_PREFIX}[0-9]*") if p.name[1:].isdigit())
    return f"{VERSION_PREFIX}{1 + max(numbers, default=0):06d}"


def switch_pointer(root: Path, version: str) -> None:
    """Make `root/version` current: write the pointer beside, fsync, and replace it in one rename.
    An older symlink pointer is removed afterwards (the migration)."""
    root = Path(root)
    tmp = root / f".{POINTER}.{uuid.uuid4().hex}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(version + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, root / POINTER)  # the commit point
    fsync_dir(root)
    legacy = root / LEGACY_POINTER
    if legacy.is_symlink() or legacy.is_file():
        legacy.unlink()
    elif legacy.is_dir():
        shutil.rmtree(legacy, ignore_errors=True)


def commit_version(root: Path, build: Path) -> Path:
    """Rename a complete `build` folder into the next version of `root` and switch to it."""
    fsync_tree(build)
    name = next_version(root)
    final = Path(root) / name
    os.replace(build, final)
    switch_pointer(root, name)
    return final


def remove_leftovers(root: Path, *, keep_versions: int = 1) -> None:
    """Remove what no run needs: versions older than the newest `keep_versions` besides the
    current one, temporary folders of runs that died, stray pointer temp files."""
    root = Path(root)
    if not root.is_dir():
        return
    current = read_pointer(root)
    versions = sorted(p for p in root.iterdir() if p.is_dir() and p.name[:1] == VERSION_PREFIX and p.name[1:].isdigit())
    keep = {current.resolve()} if current is not None else set()
    keep |= {p.resolve() for p in versions[len(versions) - keep_versions + 1:]} if keep_versions > 1 else set()
    for p in root.iterdir():
        if p.name == POINTER or (p.name == LEGACY_POINTER and current is not None and p.resolve() == current.resolve()):
            continue
        if p.is_dir() and not p.is_symlink():
            if p.resolve() in keep:
                continue
            if p.name.startswith(TMP_PREFIX) and run_alive(p.name[len(TMP_PREFIX):]):
                continue
            if p.name.startswith((VERSION_PREFIX, TMP_PREFIX)):
                shutil.rmtree(p, ignore_errors=True)
        elif p.name.startswith(f".{POINTER}.") or p.is_symlink():
            p.unlink(missing_ok=True)


def run_alive(token: str) -> bool:
    """A run token ends with the pid that owns it; a live run's temporary folder is not removed."""
    try:
        pid = int(token.rsplit("-", 1)[-1])
    except ValueError:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fsync_tree(root: Path) -> None:
    for p in [*Path(root).rglob("*"), Path(root)]:
        if p.is_file() and not p.is_symlink():
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform/file system can open a folder
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
