"""Executors: where a stage's tasks run. The same task functions run in this process, in a local
process pool, or on a Ray cluster; which one is a setting, never a second implementation.

A heavy stage is a plan of pure tasks over partitions plus a small merge in the driver:

    results = executor.map(task_fn, payloads, shared=context, label="cache.prepare", total=n)

- `task_fn(shared, payload) -> result` is a module-level function (workers import it by name).
  Its result depends only on its arguments (same input, same bytes), so a task can be retried
  anywhere and the stage's output never depends on the executor, the number of workers or which
  node ran what.
- `payloads` is consumed lazily with at most `window` tasks in flight, and results come back in
  payload order, so the driver's memory is bounded by the window, not by the input.
- `shared` (read-only context: configs, price tables, dictionaries built by an earlier pass) is
  pickled once per map to a temporary file each pool worker reads once (local), or put once in
  Ray's object store (ray).

How data travels (see docs/scaling.md): payloads, `shared` and results travel by value, pickled
over the pool's pipes (local) or through Ray's object store (Arrow tables without a copy).
Tasks whose payload is a path (ingest's work units, the dataset's bucket files) read and write
under the working directory, which on a multi-machine Ray cluster must be a filesystem every node
mounts at the same path.
"""

from __future__ import annotations

import functools
import gc
import multiprocessing
import os
import pickle
import resource
import shutil
import socket
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from typing import Any, Protocol, Self, TypeVar

from pipeline.config import from_section
from pipeline.errors import ConfigError, PipelineError

EXECUTORS = ("local", "ray")
# The process tree's target on a 2-core machine (issue 15): 1 GB of DuckDB for a driver alone,
# 512 MB each for three processes at once (the driver and two workers).
DEFAULT_MEMORY_MB = 2048
# The smallest share: DuckDB's Parquet writer alone needs ~190 MB to write rows of 50 KB of text
# (measured with DuckDB 2.0.1: a COPY of 100 such rows fails at 160 MB whatever the row group
# size), so a commit task below this could not write a partition at all.
MIN_SHARE_MB = 256


def memory_share(memory_mb: int, processes: int) -> str:
    """DuckDB's memory limit for one of `processes` processes running at once under the run's
    budget of `memory_mb`: `memory_mb / (processes + 1)`. The extra share is the headroom for what
    each process holds beside DuckDB's buffers (Python objects, Arrow batches, DuckDB's own state,
    ~0.3-0.5 GB in the audit's driver): at the default, a driver alone gets 1 GB and each of a
    driver and two workers 512 MB, and the tree stays under the budget."""
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    return f"{max(memory_mb // (processes + 1), MIN_SHARE_MB)}MB"


def processes_with_tasks(executor: Executor) -> int:
    """The processes that run at once while `executor` runs a stage's tasks: the driver, plus one
    per task in flight (none when the tasks run in the driver itself, `workers = 1`)."""
    return 1 + (executor.workers if executor.workers > 1 else 0)

ProgressHook = Callable[[str, int, int | None], None]
"""Called as `hook(label, tasks_done, tasks_total)` after every finished task (besides the bar that
`pipeline.progress` draws per task label when progress is on)."""


@dataclass(frozen=True)
class ExecutorConfig:
    """`[run]` of the TOML config (CLI: `--executor`, `--workers`, `--ray-address`)."""

    executor: str = "local"
    """`local` (a process pool on this machine) or `ray` (a Ray cluster; `pip install 'llm-log-audit[ray]'`)."""
    workers: int = 0
    """local: worker processes (0 = the CPU count; 1 = everything in this process).
    ray: tasks in flight (0 = twice the cluster's CPUs)."""
    ray_address: str | None = None
    """An existing cluster (`auto`, `host:6379`, `ray://host:10001`); unset = `RAY_ADDRESS`, else a
    Ray instance started on this machine for the run."""
    ray_object_store_mb: int = 256
    """Object store of a Ray instance this process starts itself (ignored with `ray_address`)."""
    task_retries: int = 3
    """ray: re-runs of a task whose worker or node died (tasks are pure, so a retry is exact)."""
    memory_mb: int = DEFAULT_MEMORY_MB
    """The memory budget of the run's process tree on this machine (driver and workers together).
    Every DuckDB connection gets a share of it (`memory_share`): the budget divided over the
    processes that run at once, plus one share left for what they hold outside DuckDB's limits;
    beyond its share a connection spills to disk."""


def executor_config(config: dict[str, Any], **overrides: Any) -> ExecutorConfig:
    """`[run]` of a TOML config, then CLI overrides (None = not given)."""
    values = dict(config.get("run", {})) if isinstance(config.get("run"), dict) else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    cfg = from_section(ExecutorConfig, {"run": values}, "run")
    if cfg.executor not in EXECUTORS:
        raise ConfigError(f"[run] executor: unknown `{cfg.executor}`; use one of {', '.join(EXECUTORS)}.")
    if cfg.workers < 0 or cfg.task_retries < 0 or cfg.ray_object_store_mb < 80:
        raise ConfigError("[run] workers and task_retries must be >= 0, ray_object_store_mb >= 80.")
    if cfg.memory_mb < 2 * MIN_SHARE_MB:
        raise ConfigError(f"[run] memory_mb must be >= {2 * MIN_SHARE_MB} (MB), got {cfg.memory_mb}.")
    return cfg


@dataclass(frozen=True)
class TaskReport:
    """What one task cost and where it ran (for progress, execution.json and docs/scaling.md)."""

    label: str
    index: int
    node: str
    pid: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float


@dataclass
class StageStats:
    tasks: int = 0
    nodes: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    task_wall_s: float = 0.0
    task_cpu_s: float = 0.0
    task_wall_max_s: float = 0.0
    peak_rss_mb: float = 0.0

    def add(self, r: TaskReport) -> None:
        self.tasks += 1
        self.nodes[r.node] = self.nodes.get(r.node, 0) + 1
        self.task_wall_s += r.wall_s
        self.task_cpu_s += r.cpu_s
        self.task_wall_max_s = max(self.task_wall_max_s, r.wall_s)
        self.peak_rss_mb = max(self.peak_rss_mb, r.peak_rss_mb)

    def as_dict(self) -> dict[str, Any]:
        n = max(self.tasks, 1)
        return {
            "tasks": self.tasks, "nodes": dict(sorted(self.nodes.items())), "wall_s": round(self.wall_s, 3),
            "task_wall_s": {"sum": round(self.task_wall_s, 3), "mean": round(self.task_wall_s / n, 4),
                            "max": round(self.task_wall_max_s, 3)},
            "task_cpu_s": {"sum": round(self.task_cpu_s, 3), "mean": round(self.task_cpu_s / n, 4)},
            "worker_peak_rss_mb": round(self.peak_rss_mb, 1),
        }


class Executor(Protocol):
    name: str
    workers: int
    """Tasks run at once (local: processes; ray: tasks in flight)."""
    memory_mb: int
    """The run's memory budget (`[run] memory_mb`), shared by the processes that run at once."""
    reads_driver_disk: bool
    """Whether every task can read the driver's files by path (a local pool). When not (Ray), a task's
    input travels by value through the executor, or lives where every node can reach it."""

    def map(self, fn: Callable[[Any, Any], Any], payloads: Iterable[Any], *, shared: Any = None, label: str = "",
            total: int | None = None, show_progress: bool = True) -> Iterator[Any]: ...

    def stats(self) -> dict[str, Any]: ...

    def release(self) -> None:
        """Let idle workers go before a step that runs in the driver alone (a DuckDB-heavy one):
        what they hold would sit beside the driver's peak. The next `map` starts them again."""
        ...

    def close(self) -> None: ...


# --- the task wrapper (runs in the worker) ----------------------------------------------------------

_SHARED: dict[str, Any] = {}  # per worker process: shared contexts by key (a pool's, or a Ray ref's)


def _node_id() -> str:
    return socket.gethostname()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _timed(fn: Callable[[Any, Any], Any], shared: Any, payload: Any, label: str, index: int,
           node: str) -> tuple[Any, TaskReport]:
    t0, c0 = time.perf_counter(), time.process_time()
    result = fn(shared, payload)
    report = TaskReport(label, index, node, os.getpid(), time.perf_counter() - t0, time.process_time() - c0, _rss_mb())
    return result, report


_Shared = TypeVar("_Shared")
_Payload = TypeVar("_Payload")
_Result = TypeVar("_Result")


def cycle_collector_paused(task: Callable[[_Shared, _Payload], _Result]) -> Callable[[_Shared, _Payload], _Result]:
    """`task`, run with Python's cycle collector paused (on any executor). For tasks whose Python
    work is millions of short-lived containers (rows, messages, blocks) without reference cycles,
    which reference counting frees as they go: the collector's passes over them were ~5% of the
    dataset's bucket pass and freed nothing (its memory was the same without them). Declared per
    task, not for every task: paused, the ingest's units (which do leave cycles) grew their
    workers from ~0.4 to ~1.4 GB each at 1 M."""

    @functools.wraps(task)
    def paused(shared: _Shared, payload: _Payload) -> _Result:
        if not gc.isenabled():
            return task(shared, payload)
        gc.disable()
        try:
            return task(shared, payload)
        finally:
            gc.enable()

    return paused


def _pool_task(fn: Callable[[Any, Any], Any], shared_path: str, payload: Any, label: str,
               index: int) -> tuple[Any, TaskReport]:
    """Runs in a pool worker: the map's shared context is read from its pickle file once per
    worker process (the pool outlives the map, so it cannot be an initializer argument)."""
    if shared_path not in _SHARED:
        _SHARED.clear()
        with open(shared_path, "rb") as fh:
            _SHARED[shared_path] = pickle.load(fh)
    return _timed(fn, _SHARED[shared_path], payload, label, index, _node_id())


# --- shared bookkeeping -----------------------------------------------------------------------------


class _Base:
    name = "base"

    def __init__(self, progress: ProgressHook | None) -> None:
        self._stats: dict[str, StageStats] = {}
        self._progress = progress

    def _collect(self, label: str, total: int | None, results: Iterator[tuple[Any, TaskReport]],
                 show: bool) -> Iterator[Any]:
        from pipeline.progress import stage_progress

        stage = self._stats.setdefault(label, StageStats())
        t0 = time.perf_counter()
        done = 0
        try:
            # The bar lives in the driver, which collects the results (it never crosses a process).
            with stage_progress(label, total=total, unit="task", enabled=None if show else False) as bar:
                for result, report in results:
                    stage.add(report)
                    done += 1
                    bar.advance()
                    if self._progress is not None:
                        self._progress(label, done, total)
                    yield result
        finally:
            stage.wall_s += time.perf_counter() - t0

    def stats(self) -> dict[str, Any]:
        return {"executor": self.name, "stages": {k: v.as_dict() for k, v in self._stats.items()}}

    def release(self) -> None:
        pass  # Ray's workers are the cluster's to keep or stop

    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _windowed(submit: Callable[[int, Any], Any], wait: Callable[[Any], Any], payloads: Iterable[Any],
              window: int, settle: Callable[[list[Any]], None]) -> Iterator[Any]:
    """Submit lazily with at most `window` tasks in flight; yield results in payload order.

    When the caller stops early (a task failed, or it left the loop), `settle` gets the tasks still
    in flight and returns once none of them runs: no task outlives its map, so the caller may remove
    the folders the tasks write into (a sibling of a failed task wrote a file after the dataset's
    clean-up had removed its folder)."""
    pending: deque[Any] = deque()
    try:
        for i, p in enumerate(payloads):
            pending.append(submit(i, p))
            if len(pending) >= window:
                yield wait(pending.popleft())
        while pending:
            yield wait(pending.popleft())
    finally:
        if pending:
            settle(list(pending))


def _settle_futures(futures: list[Future]) -> None:
    """Cancel the tasks not started; wait for the running ones."""
    for f in futures:
        f.cancel()
    wait_futures(futures)


class LocalExecutor(_Base):
    """Tasks in this process (`workers = 1`) or in one pool of spawned processes that serves every
    map until `close` (a worker's start-up, imports included, is paid once per run, not per pass).

    spawn, not fork: the driver holds DuckDB threads, and a forked copy of them can deadlock.
    """

    name = "local"
    reads_driver_disk = True

    def __init__(self, workers: int = 0, progress: ProgressHook | None = None,
                 memory_mb: int = DEFAULT_MEMORY_MB) -> None:
        super().__init__(progress)
        self.workers = workers or os.cpu_count() or 1
        self.memory_mb = memory_mb
        self._pool: ProcessPoolExecutor | None = None
        self._tmp: str | None = None
        self._maps = 0

    def map(self, fn: Callable[[Any, Any], Any], payloads: Iterable[Any], *, shared: Any = None, label: str = "",
            total: int | None = None, show_progress: bool = True) -> Iterator[Any]:
        workers = min(self.workers, total) if total else self.workers
        if workers <= 1:
            node = _node_id()
            it = (_timed(fn, shared, p, label, i, node) for i, p in enumerate(payloads))
            yield from self._collect(label, total, it, show_progress)
            return
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"))
            self._tmp = tempfile.mkdtemp(prefix="logaudit-shared-")
        pool = self._pool
        self._maps += 1
        shared_path = os.path.join(self._tmp or "", f"map{self._maps}.pickle")
        with open(shared_path, "wb") as fh:
            pickle.dump(shared, fh, protocol=pickle.HIGHEST_PROTOCOL)
        try:

            def submit(i: int, p: Any) -> Future:
                return pool.submit(_pool_task, fn, shared_path, p, label, i)

            yield from self._collect(label, total, _windowed(submit, Future.result, payloads, 2 * workers,
                                                             _settle_futures), show_progress)
        finally:
            os.unlink(shared_path)

    def release(self) -> None:
        """Stop the pool's workers (each holds ~0.3-0.6 GB after a pass: its memos, the shared
        context, the allocator's free lists); the next `map` spawns a new pool (~1 s of imports)."""
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


# --- Ray ----------------------------------------------------------------------------------------------


def _ray_task(fn: Callable[[Any, Any], Any], shared_box: list[Any], payload: Any, label: str,
              index: int) -> tuple[Any, TaskReport]:
    """Runs in a Ray worker. `shared_box` holds the context's ObjectRef (boxed, so Ray does not
    resolve it per task); the worker resolves it once and keeps it for the following tasks."""
    import ray

    ref = shared_box[0]
    key = ref.hex()
    if key not in _SHARED:
        _SHARED.clear()
        _SHARED[key] = ray.get(ref)
    node = ray.get_runtime_context().get_node_id()
    return _timed(fn, _SHARED[key], payload, label, index, node)


class RayExecutor(_Base):
    """Tasks on a Ray cluster: the same task functions, scheduled SPREAD across nodes, retried when
    a worker or node dies (`task_retries`)."""

    name = "ray"
    reads_driver_disk = False  # even a cluster on this machine: a task must not rely on the driver's disk

    def __init__(self, cfg: ExecutorConfig, progress: ProgressHook | None = None) -> None:
        super().__init__(progress)
        self.memory_mb = cfg.memory_mb
        try:
            import ray
        except ImportError as e:
            raise PipelineError(
                "The `ray` executor needs Ray: `pip install 'llm-log-audit[ray]'` (on every node of the cluster)."
            ) from e
        self._ray = ray
        self._started = False
        address = cfg.ray_address or os.environ.get("RAY_ADDRESS")
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"log_to_driver": False, "include_dashboard": False,
                                      "logging_level": "warning"}
            if address:
                ray.init(address=address, **kwargs)
            else:
                ray.init(num_cpus=cfg.workers or None, object_store_memory=cfg.ray_object_store_mb << 20, **kwargs)
            self._started = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = cfg.workers or 2 * max(cpus, 1)
        self._remote = ray.remote(num_cpus=1, max_retries=cfg.task_retries, scheduling_strategy="SPREAD")(_ray_task)

    def map(self, fn: Callable[[Any, Any], Any], payloads: Iterable[Any], *, shared: Any = None, label: str = "",
            total: int | None = None, show_progress: bool = True) -> Iterator[Any]:
        ray = self._ray
        box = [ray.put(shared)]

        def submit(i: int, p: Any) -> Any:
            return self._remote.remote(fn, box, p, label, i)

        def settle(refs: list[Any]) -> None:  # the tasks in flight run to their end (they may be retrying)
            ray.wait(refs, num_returns=len(refs))

        yield from self._collect(label, total, _windowed(submit, ray.get, payloads, self.workers, settle),
                                 show_progress)

    def close(self) -> None:
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
        self._started = False


def make_executor(cfg: ExecutorConfig | None = None, progress: ProgressHook | None = None) -> LocalExecutor | RayExecutor:
    """The executor `cfg` names; close it (or use it as a context manager) when the run is over."""
    cfg = cfg or ExecutorConfig()
    if cfg.executor == "ray":
        return RayExecutor(cfg, progress)
    return LocalExecutor(cfg.workers, progress, memory_mb=cfg.memory_mb)


# --- the execution record ------------------------------------------------------------------------------


def write_execution(workdir: Any, execution: dict[str, Any]) -> None:
    """`WORKDIR/execution.json`: what ran where (outside every stage's outputs, which never depend on it)."""
    import json
    from pathlib import Path

    path = Path(workdir) / "execution.json"
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(execution, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def execution_summary(execution: dict[str, Any]) -> str:
    lines = [f"executor {execution['executor']}; task stages (tasks, nodes, mean task s, worker peak MB):"]
    for label, s in execution["stages"].items():
        lines.append(f"  {label}: {s['tasks']} tasks on {len(s['nodes'])} node(s), "
                     f"{s['task_wall_s']['mean']:.3f} s, {s['worker_peak_rss_mb']:.0f} MB")
    return "\n".join(lines)
