"""Executors: the whole `logaudit run` gives the same outputs in one process, on a local pool of
two workers, on a two-node Ray cluster started on this machine, and when a Ray worker is killed
in the middle of a stage.

What "the same" means: every file under audit/, dataset/ and report/ byte for byte, except the
wall-clock fields that say when and how long (`timings_s`, the dataset's `created_at` and
MinHash speed, the build time in dataset_card.md), the manifest's `execution` (which executor ran
it) and the store's file digest (the store's file names carry the ingest run's id), which are
masked before comparing, and each stage's `_version.json` (the commit record: run id, time). The config cuts the sample (4,000 requests) into 8 cache tasks and
8 dataset buckets, so every stage really runs as several tasks.
"""

from __future__ import annotations

import gc
import json
import os
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.executor import ExecutorConfig, LocalExecutor, cycle_collector_paused, executor_config

SAMPLE = Path(__file__).resolve().parent.parent / "sample_logs"
CONFIG = """
[audit.cache]
rows_per_task = 500
[dataset]
rows_per_bucket = 500
"""
TASK_STAGES = ("audit.cache.dynamic_spans", "audit.cache.prepare", "dataset.buckets")
BUCKET_STAGES = ("dataset.buckets",)  # 4,000 requests in buckets of 500


def assert_task_counts(execution: dict[str, Any]) -> None:
    """The task plans of the sample, whatever the executor: a dataset task per bucket; a cache
    dynamic-span task and a prepare task per date partition of the store, as task clustering's."""
    stages = execution["stages"]
    for stage in BUCKET_STAGES:
        assert stages[stage]["tasks"] == 8, stage
    partitions = stages["audit.tasks.features"]["tasks"]
    assert partitions >= 40
    assert stages["audit.cache.prepare"]["tasks"] == stages["audit.cache.dynamic_spans"]["tasks"] == partitions
VOLATILE_KEYS = {"timings_s", "created_at", "workdir", "execution", "signature_seconds", "signature_docs_per_second",
                 "files_sha256"}


def _mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return value


def outputs(workdir: Path) -> dict[str, bytes]:
    """Every output file of audit, dataset and report, with the wall-clock fields masked."""
    out: dict[str, bytes] = {}
    for folder in ("audit", "dataset", "report"):
        for path in sorted((workdir / folder).rglob("*")):
            if not path.is_file() or path.name == "_version.json":  # the version's record: run id, time
                continue
            rel = str(path.relative_to(workdir))
            data = path.read_bytes()
            if path.suffix == ".json":
                data = json.dumps(_mask(json.loads(data)), sort_keys=True).replace(str(workdir), "WORKDIR").encode()
            elif path.name == "dataset_card.md":
                data = re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", b"TIME", data)
            out[rel] = data
    return out


def run_pipeline(workdir: Path, config: Path, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(
        cli, ["run", str(SAMPLE), "--out", str(workdir), "--config", str(config), "--no-progress", *args],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return json.loads((workdir / "execution.json").read_text())


def assert_same(a: dict[str, bytes], b: dict[str, bytes]) -> None:
    assert sorted(a) == sorted(b)
    differing = [k for k in a if a[k] != b[k]]
    assert not differing, f"outputs differ: {differing}"


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "tasks.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory: pytest.TempPathFactory, config_file: Path) -> tuple[dict[str, bytes], dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("w1")
    execution = run_pipeline(workdir, config_file, "--workers", "1")
    return outputs(workdir), execution


@pytest.mark.slow
def test_local_one_and_two_workers_identical(tmp_path: Path, config_file: Path, one_worker: Any) -> None:
    reference, execution_1 = one_worker
    assert reference["audit/summary.json"] and reference["report/report.json"]
    assert any(k.startswith("dataset/") and k.endswith(".jsonl") for k in reference)
    execution_2 = run_pipeline(tmp_path / "w2", config_file, "--workers", "2")
    assert_same(reference, outputs(tmp_path / "w2"))
    assert_task_counts(execution_1)
    assert_task_counts(execution_2)
    for stage in TASK_STAGES:
        assert execution_1["stages"][stage]["tasks"] == execution_2["stages"][stage]["tasks"], stage
    for scenario in ("as_logged", "ideal"):  # the as-logged pass yields ideal_bp too
        label = f"audit.cache.simulate.{scenario}"
        assert execution_1["stages"][label]["tasks"] == execution_2["stages"][label]["tasks"] >= 2, label
    # The calibration's candidate replays are tasks too (a few candidates each, never per worker).
    label = "audit.cache.calibrate"
    assert execution_1["stages"][label]["tasks"] == execution_2["stages"][label]["tasks"] >= 2, label
    # Task clustering's features: one task per date partition of the store, whatever the workers.
    label = "audit.tasks.features"
    assert execution_1["stages"][label]["tasks"] == execution_2["stages"][label]["tasks"] >= 2, label


# --- Ray ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster() -> Any:
    """Two Ray nodes on this machine, one CPU and a small object store each (the machine is shared)."""
    cluster_utils = pytest.importorskip("ray.cluster_utils")
    node = {"num_cpus": 1, "object_store_memory": 80 << 20, "include_dashboard": False}
    cluster = cluster_utils.Cluster(initialize_head=True, head_node_args=node)
    cluster.add_node(**node)
    cluster.wait_for_nodes()
    yield cluster
    cluster.shutdown()


@pytest.mark.slow
def test_ray_two_nodes_identical(tmp_path: Path, config_file: Path, one_worker: Any, ray_cluster: Any) -> None:
    reference, _ = one_worker
    execution = run_pipeline(tmp_path / "ray", config_file, "--executor", "ray", "--ray-address", ray_cluster.address)
    assert_same(reference, outputs(tmp_path / "ray"))
    assert execution["executor"] == "ray"
    nodes: set[str] = set()
    assert_task_counts(execution)
    for stage in TASK_STAGES:
        nodes |= set(execution["stages"][stage]["nodes"])
    assert execution["stages"]["audit.cache.calibrate"]["tasks"] >= 2
    assert execution["stages"]["audit.tasks.features"]["tasks"] >= 2  # task clustering ran on Ray too
    # The sample is small enough for ingest to be one unit per file: they ran on Ray too.
    assert execution["stages"]["ingest.units"]["tasks"] >= 1
    assert len(nodes) == 2, f"tasks ran on {nodes}; expected both nodes"


def _ray_task_pids() -> list[int]:
    """Ray workers busy with one of our tasks (Ray titles a worker process `ray::<function>`)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith(b"ray::_ray_task"):
            pids.append(int(entry.name))
    return pids


@pytest.mark.slow
def test_ray_worker_killed_mid_stage(tmp_path: Path, config_file: Path, one_worker: Any, ray_cluster: Any) -> None:
    reference, _ = one_worker
    killed: list[int] = []
    done = threading.Event()

    def killer() -> None:
        # Kill the first worker seen running a task of the audit or dataset stage (after ingest).
        while not done.is_set() and not killed:
            for pid in _ray_task_pids():
                if (tmp_path / "ray" / "audit").exists():
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    break
            time.sleep(0.01)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        run_pipeline(tmp_path / "ray", config_file, "--executor", "ray", "--ray-address", ray_cluster.address)
    finally:
        done.set()
        thread.join()
    assert killed, "no Ray worker was caught running a task"
    assert_same(reference, outputs(tmp_path / "ray"))


# --- the executor API -----------------------------------------------------------------------------------


def _square_plus(shared: int, x: int) -> int:
    return x * x + shared


def test_local_executor_keeps_order_and_counts_tasks() -> None:
    seen: list[tuple[str, int, int | None]] = []
    with LocalExecutor(2, progress=lambda label, done, total: seen.append((label, done, total))) as pool:
        squares = list(pool.map(_square_plus, iter(range(7)), shared=1, label="t", total=7))
        # A second map on the same pool workers gets its own shared context.
        again = list(pool.map(_square_plus, range(3), shared=10, label="u", total=3))
        stats = pool.stats()["stages"]
    assert squares == [x * x + 1 for x in range(7)] and again == [10, 11, 14]
    assert [d for label, d, _ in seen if label == "t"] == list(range(1, 8)) and seen[-1] == ("u", 3, 3)
    assert stats["t"]["tasks"] == 7 and sum(stats["t"]["nodes"].values()) == 7
    assert len({r for r in stats["t"]["nodes"]}) == 1  # one machine


def _cycle_collector_on(shared: int, x: int) -> bool:
    return gc.isenabled()


@cycle_collector_paused
def _paused_task(shared: int, x: int) -> bool:
    return gc.isenabled()


@pytest.mark.parametrize("workers", [1, 2])  # in this process, and in pool workers
def test_a_declared_task_runs_with_the_cycle_collector_paused(workers: int) -> None:
    with LocalExecutor(workers) as pool:
        assert list(pool.map(_paused_task, range(4), label="gc", total=4)) == [False] * 4
        assert gc.isenabled()  # on again once the tasks return
        assert list(pool.map(_cycle_collector_on, range(2), label="plain", total=2)) == [True] * 2  # others keep it
        gc.disable()  # a caller's own setting is kept
        try:
            assert list(pool.map(_paused_task, range(2), label="gc2", total=2)) == [False] * 2
            assert not gc.isenabled()
        finally:
            gc.enable()


def _worker_pid(shared: int, x: int) -> int:
    return os.getpid()


def test_release_stops_idle_workers_and_the_next_map_starts_new_ones() -> None:
    with LocalExecutor(2) as pool:
        first = set(pool.map(_worker_pid, range(6), label="a", total=6))
        pool.release()
        for pid in first:  # gone, not merely idle: their memory is back
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
        second = set(pool.map(_worker_pid, range(6), label="b", total=6))
        stats = pool.stats()["stages"]
    assert os.getpid() not in first | second and not first & second
    assert stats["a"]["tasks"] == stats["b"]["tasks"] == 6


def _fail_first_then_write(folder: str, i: int) -> int:
    if i == 0:
        raise ValueError("the first task fails at once")
    time.sleep(0.5)
    Path(folder, f"task-{i}").write_text("late", encoding="utf-8")
    return i


def test_no_task_runs_on_after_its_map_failed(tmp_path: Path) -> None:
    """A failed task's siblings are cancelled or finished before the error reaches the caller, who
    may then remove what they write: nothing appears afterwards."""
    with LocalExecutor(2) as pool:
        with pytest.raises(ValueError, match="fails at once"):
            list(pool.map(_fail_first_then_write, range(6), shared=str(tmp_path), label="f", total=6))
        written = sorted(os.listdir(tmp_path))
        time.sleep(1.5)
        assert sorted(os.listdir(tmp_path)) == written
        # the pool still serves the next map
        assert list(pool.map(_square_plus, range(3), shared=0, label="g", total=3)) == [0, 1, 4]


def test_executor_config_from_toml_and_overrides() -> None:
    cfg = executor_config({"run": {"executor": "ray", "workers": 3}}, workers=5, ray_address=None)
    assert cfg == ExecutorConfig(executor="ray", workers=5)
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match="executor"):
        executor_config({"run": {"executor": "spark"}})
    with pytest.raises(ConfigError, match="unknown key `wokers`"):
        executor_config({"run": {"wokers": 2}})


# --- partitions ----------------------------------------------------------------------------------------


def _batches(parts: list[int], size: int) -> list[Any]:
    import pyarrow as pa

    table = pa.table({"part": parts, "i": list(range(len(parts)))})
    return table.to_batches(max_chunksize=size)


@pytest.mark.parametrize("batch_size", [1, 3, 7, 100])
def test_partition_chunks_never_split_a_partition(batch_size: int) -> None:
    from audit.cache import partition_chunks

    # Sorted partitions of sizes 1, 4, 2, 6, 1, 3: cuts fall only where `part` changes.
    parts = [0] + [1] * 4 + [2] * 2 + [5] * 6 + [6] + [9] * 3
    chunks = list(partition_chunks(_batches(parts, batch_size), 4))
    assert [r for c in chunks for r in c.column("i").to_pylist()] == list(range(len(parts)))
    seen: set[int] = set()
    for c in chunks:
        mine = set(c.column("part").to_pylist())
        assert not mine & seen, "a partition was split across tasks"
        seen |= mine
    # Every task but the last holds at least `rows` rows; the first cut comes right after them.
    assert all(c.num_rows >= 4 for c in chunks[:-1])
    assert [c.num_rows for c in chunks] == [5, 8, 4]
