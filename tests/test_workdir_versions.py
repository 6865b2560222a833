"""The store's commit point survives copying (issue 17: a WORKDIR copied without its symlinks ended
the next ingest in IsADirectoryError) and old symlinked WORKDIRs are migrated on first write."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pipeline.ingest import ingest
from pipeline.workdir.store import STORE_DIR, current_version
from tests.test_workdir_lock import stored_ids, write_logs


def make_legacy(work: Path) -> None:
    """Turn a store into the layout before the pointer file: `.store/current` symlink, links through it."""
    store = work / STORE_DIR
    version = (store / "CURRENT").read_text().strip()
    (store / "CURRENT").unlink()
    os.symlink(version, store / "current")
    for name in ("requests", "rejects", "ingest_manifest.json"):
        (work / name).unlink()
        os.symlink(Path(STORE_DIR) / "current" / name, work / name)


@pytest.fixture
def logs(tmp_path: Path) -> dict[str, set[str]]:
    return {p: write_logs(tmp_path / p, p, 40) for p in ("a", "b")}


def test_commit_point_is_a_pointer_file(tmp_path: Path, logs: dict[str, set[str]]) -> None:
    work = tmp_path / "w"
    ingest([tmp_path / "a"], work, progress=False)
    store = work / STORE_DIR
    assert (store / "CURRENT").read_text().strip() == "v000001" and not (store / "current").exists()
    ingest([tmp_path / "b"], work, progress=False)
    assert current_version(work) == store / "v000002"
    assert sorted(p.name for p in store.iterdir()) == ["CURRENT", "v000002"]  # older version collected
    assert set(stored_ids(work)) == logs["a"] | logs["b"]
    assert os.readlink(work / "requests") == str(Path(STORE_DIR) / "v000002" / "requests")


@pytest.mark.parametrize("legacy", [False, True], ids=["pointer", "legacy-symlink"])
def test_workdir_copied_without_symlinks_keeps_working(tmp_path: Path, logs: dict[str, set[str]], legacy: bool) -> None:
    work = tmp_path / "w"
    ingest([tmp_path / "a"], work, progress=False)
    if legacy:
        make_legacy(work)
    copy = tmp_path / "copy"
    shutil.copytree(work, copy)  # follows symlinks: every link becomes a plain folder or file
    assert not any(p.is_symlink() for p in copy.rglob("*"))
    assert set(stored_ids(copy)) == logs["a"]
    ingest([tmp_path / "b"], copy, progress=False)  # used to fail: IsADirectoryError on `current`
    assert set(stored_ids(copy)) == logs["a"] | logs["b"] and len(stored_ids(copy)) == 80
    assert (copy / STORE_DIR / "CURRENT").is_file() and not (copy / STORE_DIR / "current").exists()
    assert (copy / "requests").is_symlink()  # the materialized links were replaced, nothing lost


def test_legacy_symlinked_workdir_is_read_then_migrated(tmp_path: Path, logs: dict[str, set[str]]) -> None:
    work = tmp_path / "w"
    ingest([tmp_path / "a"], work, progress=False)
    make_legacy(work)
    assert set(stored_ids(work)) == logs["a"]  # read as is
    ingest([tmp_path / "b"], work, progress=False)
    store = work / STORE_DIR
    assert (store / "CURRENT").is_file() and not os.path.lexists(store / "current")
    assert set(stored_ids(work)) == logs["a"] | logs["b"]


def test_user_folder_where_a_link_goes_is_left_alone(tmp_path: Path, logs: dict[str, set[str]]) -> None:
    from pipeline.errors import StoreError

    work = tmp_path / "w"
    ingest([tmp_path / "a"], work, progress=False)
    (work / "requests").unlink()
    (work / "requests").mkdir()
    (work / "requests" / "mine.txt").write_text("not ours")
    with pytest.raises(StoreError, match="not managed by llm-log-audit"):
        ingest([tmp_path / "b"], work, progress=False)
    assert (work / "requests" / "mine.txt").read_text() == "not ours"
