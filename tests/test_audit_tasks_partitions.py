"""Task clustering as executor tasks: one `features_task` per date partition of the store, then the
merge in the driver. The task tables must not depend on the executor or its workers, a partition
task's output must depend only on its input, and the partition path must equal the whole store
run in one connection (`build_features` without an executor)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from planted_tasks import write_planted

from audit import tasks
from pipeline.executor import LocalExecutor
from pipeline.ingest import ingest
from pipeline.workdir.store import connect_store, date_partitions

TABLES = ("request_labels", "task_types", "task_type_versions", "signal_rates")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The planted corpus (system-prompt, template, tool-set and content-typed requests, signals),
    ingested: several date partitions."""
    base = tmp_path_factory.mktemp("partitions")
    write_planted(base / "logs")
    ingest([str(base / "logs")], base / "work", progress=False)
    return base / "work"


def _audit(store: Path, out: Path, workers: int) -> tuple[dict[str, bytes], dict]:
    with LocalExecutor(workers) as executor:
        summary = tasks.run(store, out, {}, executor=executor)
        stats = executor.stats()["stages"]
    summary.pop("timings_s")
    assert not (out / ".tasks_work").exists()  # the tasks' outputs are gone before the audit commits
    return {t: (out / f"{t}.parquet").read_bytes() for t in TABLES}, {"summary": summary, "stats": stats}


def test_task_tables_identical_with_one_and_two_workers(store: Path, tmp_path: Path) -> None:
    one, info_1 = _audit(store, tmp_path / "one", 1)
    two, info_2 = _audit(store, tmp_path / "two", 2)
    assert one == two
    assert json.dumps(info_1["summary"], sort_keys=True) == json.dumps(info_2["summary"], sort_keys=True)
    partitions = len(date_partitions(store))
    assert partitions >= 3
    for info in (info_1, info_2):
        assert info["stats"]["audit.tasks.features"]["tasks"] == partitions
    assert info_1["summary"]["task_types"] >= 3 and info_1["summary"]["requests_by_basis"].get("content")


def test_partition_path_equals_the_whole_store_in_one_connection(store: Path) -> None:
    """`features`, `user_skeletons` and the prompt families: the partition tasks and their merge
    give what the same SQL gives over the whole store at once."""
    cfg = tasks.TasksConfig()
    whole = connect_store(store)
    parts = connect_store(store)
    try:
        tasks.build_features(whole, cfg)
        with LocalExecutor(1) as executor:
            tasks.build_features(parts, cfg, executor, store, store / ".tasks_work_test")
        order = "ORDER BY request_id"
        columns = [c for c in whole.sql("SELECT * FROM features").columns if c != "first_user_masked"]
        select = f"SELECT {', '.join(columns)} FROM features {order}"
        assert whole.sql(select).fetchall() == parts.sql(select).fetchall()
        # the masked first message is dropped by a task only where typing by content never reads it
        kept = parts.sql("SELECT request_id, first_user_masked FROM features "
                         "WHERE first_user_masked IS NOT NULL ORDER BY 1").fetchall()
        full = dict(whole.sql("SELECT request_id, first_user_masked FROM features").fetchall())
        assert kept and all(full[rid] == text for rid, text in kept)
        skeletons = "SELECT * FROM user_skeletons ORDER BY request_id"
        assert whole.sql(skeletons).fetchall() == parts.sql(skeletons).fetchall()
        fams_whole = tasks.system_families(whole, cfg)
        fams_parts = tasks.system_families(parts, cfg, store)
        assert (fams_whole.fps, fams_whole.masked, fams_whole.examples) == (
            fams_parts.fps, fams_parts.masked, fams_parts.examples)
        assert fams_whole.family.tolist() == fams_parts.family.tolist()
        assert any(fams_parts.examples)
    finally:
        whole.close()
        parts.close()


def test_a_partition_task_depends_only_on_its_input(store: Path, tmp_path: Path) -> None:
    """Same partition, same bytes: twice in a row, and from a copy of its files elsewhere."""
    name, files = date_partitions(store)[1]
    payload = tasks.StorePartition(name, tuple(f.read_bytes() for f in files))
    cfg = tasks.TasksConfig()
    first = tasks.features_task(cfg, payload)
    second = tasks.features_task(cfg, tasks.StorePartition(name, tuple(bytes(b) for b in payload.files)))
    assert first.features == second.features and first.user_lines == second.user_lines
    assert first.forms.equals(second.forms) and first.masks.equals(second.masks)
    assert pq.read_metadata(pa.BufferReader(first.features)).num_rows > 0
    # another partition gives other bytes (the test would pass vacuously on a constant)
    other_name, other_files = date_partitions(store)[2]
    other = tasks.features_task(cfg, tasks.StorePartition(other_name, tuple(f.read_bytes() for f in other_files)))
    assert other.features != first.features
