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
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

POINTER = "CURRENT"
LEGACY_POINTER = "current"  # a symlink to the version (before the pointer file); a plain folder once copied
VERSION_PREFIX = "v"
TMP_PREFIX = "tmp-"


PAUSE_ENV = "LOGAUDIT_TEST_PAUSE_AFTER"


def pause_point(path: Path) -> None:
    """Test hook: when the environment variable LOGAUDIT_TEST_PAUSE_AFTER names the file just
    written (`report.md`), stop here for a while, so a test can SIGKILL the process at a known point
    between two files of one version (tests/test_stage_versions.py). Unset in normal use."""
    if os.environ.get(PAUSE_ENV) == Path(path).name:
        time.sleep(600)


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
    return pid == os.getpid() or pid_alive(pid)


def pid_alive(pid: int) -> bool:
    """Is process `pid` running (on this host)?"""
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


# --- stage outputs ------------------------------------------------------------------------------

STAGES_DIR = ".stages"
VERSION_FILE = "_version.json"


def stage_root(workdir: Path, stage: str) -> Path:
    return Path(workdir) / STAGES_DIR / stage


def stage_dir(workdir: Path, stage: str) -> Path:
    """Where a stage's current output is read from: its committed version, or (a WORKDIR from before
    versioned outputs) the plain `WORKDIR/<stage>/` folder."""
    current = read_pointer(stage_root(workdir, stage))
    return current if current is not None else Path(workdir) / stage


def stage_version_name(workdir: Path, stage: str) -> str | None:
    """The name of a stage's current version (`v000003`), None before its first versioned run."""
    current = read_pointer(stage_root(workdir, stage))
    return current.name if current is not None else None


def stage_version(workdir: Path, stage: str) -> dict[str, Any]:
    """The `_version.json` of a stage's current output ({} when absent or from before versions)."""
    try:
        return json.loads((stage_dir(workdir, stage) / VERSION_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def building(
    workdir: Path, stage: str, *, store: dict[str, Any], inputs: dict[str, Any] | None = None, carry: tuple[str, ...] = ()
) -> Iterator[Path]:
    """Build the next version of `stage`'s output in a fresh folder, yielded to the caller; commit
    it when the block ends normally, remove it otherwise (the current version is untouched).

    Args:
        store: the store identity the output is computed from (`workdir.store.store_identity`).
        inputs: versions of other stage outputs read (e.g. the audit a dataset took labels from).
        carry: files of the current version that another command owns (the weekly report beside
            the report) and that the new version keeps, hard-linked.
    """
    root = stage_root(workdir, stage)
    root.mkdir(parents=True, exist_ok=True)
    remove_leftovers(root)
    for stray in [*Path(workdir).glob(f".{stage}.view-*"), *Path(workdir).glob(f".{stage}.old-*")]:
        if stray.is_symlink() or stray.is_file():
            stray.unlink(missing_ok=True)
        else:
            shutil.rmtree(stray, ignore_errors=True)
    token = run_token()
    build = root / f"{TMP_PREFIX}{token}"
    build.mkdir()
    try:
        yield build
        previous = read_pointer(root) or (Path(workdir) / stage)
        for name in carry:
            if (previous / name).is_file() and not (build / name).exists():
                _link_or_copy(previous / name, build / name)
        record = {"stage": stage, "store": store, "inputs": inputs or {}, "run": token,
                  "created": datetime.now(UTC).isoformat(timespec="seconds")}
        (build / VERSION_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        final = commit_version(root, build)  # the commit point
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    refresh_view(Path(workdir) / stage, final)
    remove_leftovers(root)


def carry_entries(src: Path, dst: Path, *, skip: tuple[str, ...] = ()) -> None:
    """Hard-link (copy where links cannot be made) every entry of the current version `src` not in
    `skip` into the version being built: a stage whose version holds several independent parts
    (one folder per evaluated candidate) rebuilds one part and keeps the rest."""
    if not Path(src).is_dir():
        return
    for entry in Path(src).iterdir():
        if entry.name in (*skip, VERSION_FILE) or entry.name.startswith("."):
            continue
        if entry.is_dir():
            shutil.copytree(entry, Path(dst) / entry.name, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry, Path(dst) / entry.name)


def work_folder(workdir: Path, stage: str) -> Path:
    """A scratch folder for one run of `stage`, removed by the next run if this one is killed."""
    root = stage_root(workdir, stage)
    root.mkdir(parents=True, exist_ok=True)
    folder = root / f"{TMP_PREFIX}work-{run_token()}"
    folder.mkdir()
    return folder


def refresh_view(view: Path, version: Path) -> None:
    """Point the user-facing `WORKDIR/<stage>` at `version`: a relative symlink, or where symlinks
    cannot exist a hard-linked copy. The tool itself never reads the view (it resolves CURRENT), so
    this is best effort; a plain folder there (an older layout, or a copy that dropped the link)
    was the stage's own output and is replaced."""
    target = os.path.relpath(version, view.parent)
    if view.is_symlink() and os.readlink(view) == target:
        return
    tmp = view.with_name(f".{view.name}.view-{uuid.uuid4().hex}")
    try:
        os.symlink(target, tmp)
    except OSError:
        shutil.copytree(version, tmp, copy_function=_link_or_copy)
    old = None
    if view.is_dir() and not view.is_symlink():
        old = view.with_name(f".{view.name}.old-{uuid.uuid4().hex}")
        os.replace(view, old)
    os.replace(tmp, view)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _link_or_copy(src: str | Path, dst: str | Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def mismatched_inputs(workdir: Path, store: dict[str, Any], stages: tuple[str, ...]) -> list[str]:
    """Why the current outputs of `stages` cannot be read together: each computed from another
    store than the current one, or the dataset from another audit than the current one.
    Outputs from before versioned outputs carry no record and are not judged."""
    problems = []
    audit_version = read_pointer(stage_root(workdir, "audit"))
    for stage in stages:
        record = stage_version(workdir, stage)
        if not record:
            continue
        built_on = record.get("store") or {}
        if built_on.get("fingerprint") != store.get("fingerprint"):
            problems.append(
                f"`{stage}` was computed from store {built_on.get('version')}, the store is now {store.get('version')} "
                f"(rerun `logaudit {stage}`)"
            )
        used_audit = (record.get("inputs") or {}).get("audit")
        if stage != "audit" and used_audit and audit_version is not None and used_audit != audit_version.name:
            problems.append(
                f"`{stage}` took its labels from audit {used_audit}, the audit is now {audit_version.name} "
                f"(rerun `logaudit {stage}`)"
            )
    return problems
