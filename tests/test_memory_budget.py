"""One memory budget for the run (`[run] memory_mb`): every DuckDB connection gets a share of it,
the budget divided over the processes that run at once plus one share of headroom
(`pipeline.executor.memory_share`), instead of a constant per task or per module.

Planted: the shares for N processes under a budget B; the ingest's decision alone (its workers
released first) and its commit tasks beside the driver each under their share; small days grouped
into one commit task; a commit whose day is larger than its share still stores every row (DuckDB
spills); the audit's driver limits are shares of the same budget.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from audit import tables
from pipeline.errors import ConfigError
from pipeline.executor import (
    DEFAULT_MEMORY_MB,
    MIN_SHARE_MB,
    LocalExecutor,
    executor_config,
    make_executor,
    memory_share,
    processes_with_tasks,
)
from pipeline.ingest import ingest, writer
from tests.test_workdir_lock import RECORD, stored_ids


@pytest.mark.parametrize(("budget", "processes", "share"), [
    (2048, 1, "1024MB"),  # the audit's driver alone: its 1 GB of before
    (2048, 3, "512MB"),  # the driver beside two workers: the cache module's 512 MB of before
    (1536, 2, "512MB"),
    (1500, 4, "300MB"),
    (1500, 3, "375MB"),
    (1028, 3, "257MB"),  # just above the floor
    (1024, 3, f"{MIN_SHARE_MB}MB"),  # exactly the floor
    (1000, 3, f"{MIN_SHARE_MB}MB"),  # 250 MB: raised to the floor
])
def test_a_share_is_the_budget_over_the_processes_and_one_for_headroom(budget: int, processes: int, share: str) -> None:
    assert memory_share(budget, processes) == share


def test_no_share_for_no_process() -> None:
    with pytest.raises(ValueError):
        memory_share(2048, 0)


def test_the_budget_comes_from_run_in_the_config_and_reaches_the_executor() -> None:
    assert executor_config({}).memory_mb == DEFAULT_MEMORY_MB == 2048
    cfg = executor_config({"run": {"memory_mb": 1200, "workers": 2}})
    assert cfg.memory_mb == 1200
    with make_executor(cfg) as pool:
        assert pool.memory_mb == 1200 and processes_with_tasks(pool) == 3
    assert processes_with_tasks(LocalExecutor(1)) == 1  # its tasks run in the driver
    assert executor_config({"run": {"memory_mb": 1200}}, memory_mb=900).memory_mb == 900  # `--memory-mb` wins
    with pytest.raises(ConfigError, match="memory_mb must be >= 512"):
        executor_config({"run": {"memory_mb": 511}})
    with pytest.raises(ConfigError, match="memory_mb must be an integer"):
        executor_config({"run": {"memory_mb": "2GB"}})


def test_the_audits_driver_limits_are_shares_of_the_same_budget() -> None:
    config = {"run": {"memory_mb": 1600}}
    assert tables.driver_memory_limit(config) == "800MB"  # alone (workers released)
    assert tables.driver_memory_limit(config, beside=LocalExecutor(2)) == "400MB"  # beside two workers
    assert tables.driver_memory_limit(config, beside=LocalExecutor(1)) == "800MB"  # tasks in the driver
    assert tables.driver_memory_limit({}) == "1024MB"


class RecordingExecutor:
    """Runs every task in this process, in order, and records what the stage asked of it: the
    memory budget of a pool of `workers` processes without spawning one (not named `local`: the
    ingest runs small inputs in the driver instead of a local pool)."""

    name = "recording"

    def __init__(self, workers: int, memory_mb: int) -> None:
        self.workers, self.memory_mb = workers, memory_mb
        self.calls: list[tuple[str, Any]] = []

    def map(self, fn: Callable[[Any, Any], Any], payloads: Iterable[Any], *, shared: Any = None, label: str = "",
            total: int | None = None, show_progress: bool = True) -> Iterator[Any]:
        for p in payloads:
            self.calls.append((label, p))
            yield fn(shared, p)

    def stats(self) -> dict[str, Any]:
        return {}

    def release(self) -> None:
        self.calls.append(("release", None))

    def close(self) -> None:
        pass


def _lines(days: dict[int, int], text: int = 0) -> str:
    """`days[d]` records on day d of July; each prompt `text` bytes of random (incompressible) text."""
    out = []
    for day, n in sorted(days.items()):
        for i in range(n):
            rid = f"r{day:02d}-{i:05d}"
            body = base64.b64encode(hashlib.shake_256(rid.encode()).digest(text))[:text].decode() if text else ""
            out.append(RECORD % (rid, day, body, rid))
    return "\n".join(out) + "\n"


def test_commit_tasks_share_the_budget_and_group_small_days(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer, "COMMIT_TASK_ROWS", 10)
    logs = tmp_path / "logs.jsonl"
    # days 1-3: 4 + 5 rows fit one task (9 <= 10), day 3 starts the next (9 + 3 > 10); day 4: 12
    # rows, above the group size, alone; days 5 and 6 together
    logs.write_text(_lines({1: 4, 2: 5, 3: 3, 4: 12, 5: 2, 6: 2}), encoding="utf-8")
    pool = RecordingExecutor(workers=2, memory_mb=1200)
    ingest([logs], tmp_path / "w", executor=pool, progress=False)
    labels = [label for label, _ in pool.calls]
    # the units' workers are released before the driver decides alone; the commit runs after
    assert labels.index("release") > max(i for i, lab in enumerate(labels) if lab == "ingest.units")
    assert labels.index("release") < labels.index("ingest.commit")
    tasks = [p for label, p in pool.calls if label == "ingest.commit"]
    assert [[p.date for p in t.parts] for t in tasks] == [
        ["2026-07-01", "2026-07-02"], ["2026-07-03"], ["2026-07-04"], ["2026-07-05", "2026-07-06"]]
    assert {t.memory_limit for t in tasks} == {"400MB"}  # 1200 MB over two workers and headroom
    assert [t.parts[0].ids.num_rows for t in tasks] == [4, 3, 12, 2]
    assert len(stored_ids(tmp_path / "w")) == 28


def test_grouping_never_changes_a_partition(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each day's file holds the same rows in the same order whether the days were written by one
    task each or grouped."""
    logs = tmp_path / "logs.jsonl"
    logs.write_text(_lines({1: 7, 2: 5, 3: 9}), encoding="utf-8")
    stores = {}
    for rows in (1, 1000):
        monkeypatch.setattr(writer, "COMMIT_TASK_ROWS", rows)
        ingest([logs], tmp_path / f"w{rows}", executor=RecordingExecutor(2, 2048), progress=False)
        stores[rows] = {p.parent.name: pq.read_table(p) for p in sorted((tmp_path / f"w{rows}").glob(
            ".store/v*/requests/*/*.parquet"))}
    assert sorted(stores[1]) == sorted(stores[1000]) == ["date=2026-07-01", "date=2026-07-02", "date=2026-07-03"]
    for day, table in stores[1].items():
        assert table.equals(stores[1000][day]), day


def test_a_day_larger_than_a_task_is_written_in_slices_of_its_staged_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Day 4 holds 23 rows staged in files of 5 (`batch_rows`; the first also holds day 3's 2 rows,
    so day 4 has 3, 5, 5, 5, 5 per file): with tasks of 10 rows it is written as 3 slices of whole
    files (3+5, 5+5, 5 rows; each file in (ts, request_id) order), each in a task holding at most
    10 rows; the day's rows are those of the unsliced commit, and a day that fits keeps its one file."""
    logs = tmp_path / "logs.jsonl"
    logs.write_text(_lines({3: 2, 4: 23}), encoding="utf-8")
    monkeypatch.setattr(writer, "COMMIT_TASK_ROWS", 1000)
    ingest([logs], tmp_path / "whole", executor=RecordingExecutor(2, 2048), progress=False, batch_rows=5)
    monkeypatch.setattr(writer, "COMMIT_TASK_ROWS", 10)
    pool = RecordingExecutor(2, 2048)
    ingest([logs], tmp_path / "sliced", executor=pool, progress=False, batch_rows=5)

    def day_files(workdir: Path, day: str) -> list[Path]:
        return sorted((workdir / "requests" / f"date=2026-07-{day}").glob("*.parquet"))

    sliced = day_files(tmp_path / "sliced", "04")
    assert [f.name.rsplit("-", 1)[-1] for f in sliced] == ["s0000.parquet", "s0001.parquet", "s0002.parquet"]
    tables_ = [pq.read_table(f) for f in sliced]
    assert [t.num_rows for t in tables_] == [8, 10, 5]
    for t in tables_:
        keys = list(zip(t.column("ts").to_pylist(), t.column("request_id").to_pylist(), strict=True))
        assert keys == sorted(keys)
    whole = pq.read_table(day_files(tmp_path / "whole", "04")[0])
    assert pa.concat_tables(tables_).sort_by([("ts", "ascending"), ("request_id", "ascending")]).equals(whole)
    (small_day,) = day_files(tmp_path / "sliced", "03")
    assert not re.search(r"-s\d{4}\.parquet$", small_day.name)
    tasks = [p for label, p in pool.calls if label == "ingest.commit"]
    assert max(sum(part.ids.num_rows for part in t.parts) for t in tasks) <= 10
    assert len(stored_ids(tmp_path / "sliced")) == 25


@pytest.mark.slow
def test_a_commit_larger_than_its_share_spills_and_stores_every_row(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under the smallest budget every connection gets the floor (256 MB, of which DuckDB's Parquet
    writer takes ~190 MB) while one day holds 8,000 rows with 80 MB of incompressible prompt text:
    the commit task's sort spills to disk and every row is stored, in time order, the same rows as
    under the default budget. (The day's staged files are merged, not linked: that is the path
    whose memory is at stake.)"""
    monkeypatch.setattr(writer, "LINK_MIN_ROWS", 10**9)
    logs = tmp_path / "logs.jsonl"
    logs.write_text(_lines({2: 8000}, text=10_000), encoding="utf-8")
    pool = RecordingExecutor(workers=2, memory_mb=2 * MIN_SHARE_MB)
    ingest([logs], tmp_path / "small", executor=pool, progress=False)
    assert {p.memory_limit for label, p in pool.calls if label == "ingest.commit"} == {f"{MIN_SHARE_MB}MB"}
    ingest([logs], tmp_path / "default", executor=RecordingExecutor(2, DEFAULT_MEMORY_MB), progress=False)
    small, default = (pq.read_table(next((tmp_path / w).glob(".store/v*/requests/date=2026-07-02/*.parquet")))
                      for w in ("small", "default"))
    assert small.num_rows == 8000 and small.equals(default)


def test_memory_mb_on_the_command_line_is_checked() -> None:
    from click.testing import CliRunner

    from pipeline.cli import cli

    result = CliRunner().invoke(cli, ["ingest", "nowhere", "--memory-mb", "256"])
    assert result.exit_code == 2 and "--memory-mb" in result.output
