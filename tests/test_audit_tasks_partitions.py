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
from pipeline.executor import LocalExecutor, RayExecutor
from pipeline.ingest import ingest
from pipeline.workdir import store as workdir_store
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
    """Same partition, same bytes: twice in a row, by value (as on Ray) and by path (as in a local
    pool), and under another memory limit (DuckDB spills, the result does not change)."""
    name, files = date_partitions(store)[1]
    payload = workdir_store.StorePartition(name, tuple(f.read_bytes() for f in files))
    cfg = tasks.TasksConfig()
    ctx = tasks.FeaturesContext(cfg, "512MB")
    first = tasks.features_task(ctx, payload)
    second = tasks.features_task(ctx, workdir_store.StorePartition(name, tuple(bytes(b) for b in payload.files)))
    by_path = tasks.features_task(tasks.FeaturesContext(cfg, "256MB"),
                                  workdir_store.StorePartition(name, tuple(str(f) for f in files)))
    for other_run in (second, by_path):
        assert first.features == other_run.features and first.user_lines == other_run.user_lines
        assert first.forms.equals(other_run.forms) and first.masks.equals(other_run.masks)
    assert pq.read_metadata(pa.BufferReader(first.features)).num_rows > 0
    # another partition gives other bytes (the test would pass vacuously on a constant)
    other_name, other_files = date_partitions(store)[2]
    other = tasks.features_task(ctx, workdir_store.StorePartition(other_name, tuple(f.read_bytes() for f in other_files)))
    assert other.features != first.features


def test_partitions_travel_by_path_only_where_the_task_can_read_the_drivers_disk(store: Path) -> None:
    """A local pool's tasks read the store's files; Ray's get them by value (no shared disk assumed).
    Both list every partition once, largest first (the pool's tail is its smallest tasks)."""
    assert LocalExecutor.reads_driver_disk and not RayExecutor.reads_driver_disk
    by_path = list(workdir_store.store_partitions(store, by_value=False))
    by_value = list(workdir_store.store_partitions(store, by_value=True))
    assert [p.name for p in by_path] == [p.name for p in by_value]
    assert sorted(p.name for p in by_path) == [name for name, _ in date_partitions(store)]
    sizes = [sum(Path(f).stat().st_size for f in p.files) for p in by_path]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > sizes[-1]
    for path_part, value_part in zip(by_path, by_value, strict=True):
        assert all(isinstance(f, str) and Path(f).is_file() for f in path_part.files)
        assert [Path(f).read_bytes() for f in path_part.files] == list(value_part.files)


def test_feature_and_prepare_tasks_take_their_share_of_the_run_budget(store: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The partition tasks' DuckDB limit (task clustering's features, the cache's dynamic spans and
    prepare) is the run budget's share per process in flight, not a constant."""
    from audit import cache

    seen: list[str] = []
    real_connect = workdir_store.connect_requests
    real_outcome = workdir_store.outcome_connection

    def spy(files: list[str], **kwargs: object) -> object:
        if kwargs.get("threads") == 1:  # a task's connection (`connect_partition`), not the driver's store
            seen.append(str(kwargs["memory_limit"]))
        return real_connect(files, **kwargs)

    def outcome_spy(memory_limit: str) -> object:  # the prepare task reads its files itself
        seen.append(memory_limit)
        return real_outcome(memory_limit)

    monkeypatch.setattr(workdir_store, "connect_requests", spy)
    monkeypatch.setattr(cache, "outcome_connection", outcome_spy)
    con = connect_store(store)
    try:
        with LocalExecutor(1, memory_mb=3000) as executor:  # tasks run in this process: the spy sees them
            tasks.build_features(con, tasks.TasksConfig(), executor, store, tmp_path / "work")
            features = len(seen)
            cache.simulate_cache(store, executor=executor, work_dir=tmp_path / "cache")
    finally:
        con.close()
    partitions = len(list(workdir_store.store_partitions(store, by_value=False)))
    assert features == partitions and len(seen) - features == 2 * partitions  # the cache: two passes
    assert seen and set(seen) == {"1500MB"}  # 3000 MB / (1 process + headroom)
