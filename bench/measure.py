"""Run one measured step in a child process: wall time, CPU time and peak memory of that step alone.

Figures per step:
  wall_s          the child's whole life (interpreter start and imports included: a CLI user pays them)
  work_s          the step's own timer around its work where it has one (`inner_s`), else wall_s;
                  throughput (records/s, MB/s) is computed from it
  cpu_s           user + system CPU of the child and every process it started (pool workers)
  peak_rss_mb     the largest single process's peak RSS (getrusage; the kernel's own high-water mark)
  peak_tree_mb    the peak of the summed PSS of the child and its descendants, sampled every 0.25 s (PSS read
                  when the RSS grown since the last read could make a new peak, else every 5 s):
                  what a multi-process stage (ingest's pool) really holds at once; PSS splits pages
                  shared after fork, so workers are not double-counted
  peak_by_phase   (audit) the peak of the same sum per step of the stage (`pipeline.progress.phase`),
                  with the driver's own PSS at that moment, sampled from a thread inside the child
  foreign_cpu_s   CPU the rest of the machine used meanwhile (all CPUs busy time minus ours): the
                  noise indicator on a shared machine, as is the load average before and after
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / (1 << 20)


@dataclass
class Measurement:
    name: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    records: int | None = None
    bytes: int | None = None
    peak_tree_mb: float | None = None
    foreign_cpu_s: float | None = None
    load_before: float | None = None
    load_after: float | None = None
    extra: dict[str, Any] | None = None

    @property
    def work_s(self) -> float:
        """The step's own timer when it has one (work only, no interpreter start-up or imports)."""
        inner = (self.extra or {}).get("inner_s")
        return float(inner) if inner else self.wall_s

    @property
    def records_per_s(self) -> float | None:
        return self.records / self.work_s if self.records and self.work_s else None

    @property
    def mb_per_s(self) -> float | None:
        return self.bytes / 1e6 / self.work_s if self.bytes and self.work_s else None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Measurement:
        """A measurement read back from a results file (the derived figures are recomputed)."""
        fields = {k: v for k, v in d.items() if k not in ("work_s", "records_per_s", "mb_per_s")}
        return cls(**fields)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["work_s"] = round(self.work_s, 3)
        d["records_per_s"] = round(self.records_per_s, 1) if self.records_per_s else None
        d["mb_per_s"] = round(self.mb_per_s, 2) if self.mb_per_s else None
        return d


# The child writes its result dict to a file (stdout belongs to the code under test: progress
# output there must not be able to hide the result).
_CHILD = """
import json, sys, importlib
mod, fn = sys.argv[1].rsplit(":", 1)
kwargs = json.loads(sys.argv[2])
result = getattr(importlib.import_module(mod), fn)(**kwargs)
with open(sys.argv[3], "w", encoding="utf-8") as fh:
    json.dump(result, fh, default=str)
"""


def _busy_cpu_s() -> float:
    """Busy CPU seconds of the whole machine since boot (all CPUs; idle and iowait excluded)."""
    with open("/proc/stat", encoding="ascii") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / _CLOCK_TICKS


def _children_of() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                stat = fh.read()
        except OSError:
            continue
        # Fields after the parenthesized command: state ppid ...
        ppid = int(stat[stat.rfind(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def _rss_mb(pid: int) -> float:
    """Resident set size (MB) from `/proc/<pid>/statm`: a read of constant cost, unlike PSS."""
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * _PAGE_MB
    except (OSError, IndexError, ValueError):
        return 0.0


def _pss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class TreeSampler(threading.Thread):
    """Samples the summed PSS of a process and its descendants until stopped.

    With `limit_mb`, kills the process group (the child was started in a session of its own) once
    the tree holds more: on a shared machine a step that would exhaust memory must fail alone
    rather than wake the kernel's OOM killer, which might pick someone else's process.
    """

    # The kernel walks a process's page tables for its PSS (20 ms of CPU per read of a 1 GB process):
    # two samplers reading a tree of three such processes four times a second took a quarter of a
    # core from the step they measured. So a sample reads the RSS (constant cost), and the PSS only
    # when the last PSS read plus the RSS grown since could be a new peak, when a process joined or
    # left the tree, or when the last read is `FULL_READ_S` old. A page that comes or goes changes
    # the PSS by at most its size, and a private (anonymous) page by exactly that: within one set of
    # processes the bound is exact but for shared pages evicted between two reads. RSS that went
    # adds nothing to the bound: a shared page going lowers the RSS by its size and the PSS by less
    # (a tree whose RSS fell by more than its PSS made the bound negative, and a new phase's first
    # sample was skipped).
    FULL_READ_S = 5.0

    def __init__(self, pid: int, interval_s: float = 0.25, limit_mb: float | None = None) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval_s = interval_s
        self.limit_mb = limit_mb
        self.peak_mb = 0.0
        self.pss_reads = 0
        self._last_read: tuple[float, float, float, list[int]] = (float("-inf"), 0.0, 0.0, [])  # (monotonic
        # time, PSS sum, RSS sum, processes) of the last PSS read
        self.killed = False
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            tree = self.sample()
            if tree is not None:
                self.peak_mb = max(self.peak_mb, tree)
            if self.limit_mb and self.peak_mb > self.limit_mb and not self.killed:
                self.killed = True
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
            self._stop_event.wait(self.interval_s)

    def sample(self) -> float | None:
        """The summed PSS of the process and its descendants now (MB); None when it was not read."""
        key = self.peak_key()
        tree = self.tree_pids()
        rss = sum(_rss_mb(p) for p in tree)
        read_at, pss_then, rss_then, tree_then = self._last_read
        now = time.monotonic()
        if (pss_then + max(rss - rss_then, 0.0) <= self.peak_of(key) and tree == tree_then
                and now - read_at < self.FULL_READ_S):
            return None
        self.pss_reads += 1
        pss = {p: _pss_mb(p) for p in tree}
        total = sum(pss.values())
        self._last_read = (now, total, rss, tree)
        self.record(key, pss, total)
        return total

    def peak_key(self) -> str:
        """Which peak the sample taken now counts towards (one for the whole run here); called once
        per sample, so a subclass may count its samples here."""
        return ""

    def peak_of(self, key: str) -> float:
        return self.peak_mb

    def record(self, key: str, pss: dict[int, float], total: float) -> None:
        """Keep a sample (`pss` per process, summed `total`) towards the peak `key` (`run` keeps `peak_mb`)."""

    def tree_pids(self) -> list[int]:
        """The process and its descendants."""
        kids = _children_of()
        tree, todo = [], [self.pid]
        while todo:
            p = todo.pop()
            tree.append(p)
            todo.extend(kids.get(p, []))
        return tree

    def stop(self) -> float:
        self._stop_event.set()
        self.join()
        return self.peak_mb


class PhaseSampler(TreeSampler):
    """Samples this process's tree (it and its pool workers) from a thread inside it, and charges
    each sample to the phase the process is in (`pipeline.progress.phase`): the peak per step of
    a stage, e.g. `audit.cache/prepare`, with the driver's own share at that moment."""

    def __init__(self, interval_s: float = 0.25) -> None:
        super().__init__(os.getpid(), interval_s)
        self.phases: dict[str, dict[str, float]] = {}
        self._peaks: dict[str, float] = {}  # unrounded

    def peak_key(self) -> str:
        from pipeline.progress import current_phase

        name = current_phase() or "(outside)"
        self.phases.setdefault(name, {"peak_tree_mb": 0.0, "driver_mb": 0.0, "samples": 0})["samples"] += 1
        return name

    def peak_of(self, key: str) -> float:
        return self._peaks.get(key, 0.0)

    def record(self, key: str, pss: dict[int, float], total: float) -> None:
        if total > self.peak_of(key):
            self._peaks[key] = total
            self.phases[key].update(peak_tree_mb=round(total, 1), driver_mb=round(pss[self.pid], 1))


class StepFailed(RuntimeError):
    """A step exited non-zero, timed out or was stopped by the memory guard."""

    def __init__(self, message: str, *, wall_s: float, peak_tree_mb: float) -> None:
        super().__init__(message)
        self.wall_s = wall_s
        self.peak_tree_mb = peak_tree_mb


def run_child(name: str, target: str, kwargs: dict[str, Any], *, log: Path | None = None,
              timeout_s: float | None = None, max_memory_mb: float | None = None, **meta: Any) -> Measurement:
    """Call `module:function(**kwargs)` in a fresh interpreter and measure it.

    The child's stdout and stderr go to `log` (appended) when given; on failure their tail is raised.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    load_before = os.getloadavg()[0]
    busy0 = _busy_cpu_s()
    t0 = time.perf_counter()
    err_fh = open(log, "a", encoding="utf-8") if log else subprocess.PIPE  # noqa: SIM115 - closed below
    if log:
        err_fh.write(f"\n=== {name}: {target} {json.dumps(kwargs, default=str)}\n")
        err_fh.flush()
    fd, result_path = tempfile.mkstemp(prefix="bench-result-", suffix=".json")
    os.close(fd)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, target, json.dumps(kwargs, default=str), result_path],
            stdout=err_fh,
            stderr=subprocess.STDOUT if log else subprocess.PIPE,
            env=env,
            text=True,
            start_new_session=True,
        )
        sampler = TreeSampler(proc.pid, limit_mb=max_memory_mb)
        sampler.start()
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise StepFailed(f"{name} timed out after {timeout_s} s", wall_s=time.perf_counter() - t0,
                             peak_tree_mb=sampler.stop()) from None
        finally:
            peak_tree = sampler.stop()
        wall = time.perf_counter() - t0
        busy = _busy_cpu_s() - busy0
        if sampler.killed:
            raise StepFailed(f"{name} stopped by the memory guard after {wall:.0f} s: its processes held more than"
                             f" {max_memory_mb:.0f} MB", wall_s=wall, peak_tree_mb=peak_tree)
        if proc.returncode != 0:
            tail = (out or "") + (err or "") if not log else log.read_text(encoding="utf-8")
            raise StepFailed(f"{name} failed (exit {proc.returncode}):\n{tail[-3000:]}", wall_s=wall,
                             peak_tree_mb=peak_tree)
        result = json.loads(Path(result_path).read_text(encoding="utf-8"))
    finally:
        if log:
            err_fh.close()
        os.unlink(result_path)
    cpu = result.pop("_cpu_s", None)
    rss = result.pop("_peak_rss_mb", None)
    return Measurement(
        name=name,
        wall_s=round(wall, 3),
        cpu_s=round(cpu, 3) if cpu is not None else float("nan"),
        peak_rss_mb=round(rss, 1) if rss is not None else float("nan"),
        records=result.pop("records", meta.get("records")),
        bytes=result.pop("bytes", meta.get("bytes")),
        peak_tree_mb=round(max(peak_tree, rss or 0.0), 1),
        foreign_cpu_s=round(max(0.0, busy - (cpu or 0.0)), 1),
        load_before=round(load_before, 2),
        load_after=round(os.getloadavg()[0], 2),
        extra=result or None,
    )


def self_usage() -> dict[str, float]:
    """CPU seconds and peak RSS of this process and its finished children (call at the end of a step)."""
    import resource

    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "_cpu_s": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime,
        # Peak of the largest single process (ru_maxrss is in KiB on Linux).
        "_peak_rss_mb": max(me.ru_maxrss, kids.ru_maxrss) / 1024,
    }
