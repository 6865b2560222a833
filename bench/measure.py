"""Run one measured step in a child process: wall time, CPU time and peak RSS of that process alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Measurement:
    name: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    records: int | None = None
    bytes: int | None = None
    extra: dict[str, Any] | None = None

    @property
    def records_per_s(self) -> float | None:
        return self.records / self.wall_s if self.records and self.wall_s else None

    @property
    def mb_per_s(self) -> float | None:
        return self.bytes / 1e6 / self.wall_s if self.bytes and self.wall_s else None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["records_per_s"] = self.records_per_s
        d["mb_per_s"] = self.mb_per_s
        return d


# The child prints one JSON line (its result dict) last; /usr/bin/time-like figures come from wait4.
_CHILD = """
import json, sys, importlib
mod, fn = sys.argv[1].rsplit(":", 1)
kwargs = json.loads(sys.argv[2])
result = getattr(importlib.import_module(mod), fn)(**kwargs)
print("BENCH_RESULT " + json.dumps(result, default=str))
"""


def run_child(name: str, target: str, kwargs: dict[str, Any], **meta: Any) -> Measurement:
    """Call `module:function(**kwargs)` in a fresh interpreter and measure it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, target, json.dumps(kwargs, default=str)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{err[-3000:]}")
    line = next((ln for ln in reversed(out.splitlines()) if ln.startswith("BENCH_RESULT ")), None)
    result = json.loads(line[len("BENCH_RESULT "):]) if line else {}
    cpu = result.pop("_cpu_s", None)
    rss = result.pop("_peak_rss_mb", None)
    return Measurement(
        name=name,
        wall_s=round(wall, 3),
        cpu_s=round(cpu, 3) if cpu is not None else float("nan"),
        peak_rss_mb=round(rss, 1) if rss is not None else float("nan"),
        records=result.pop("records", meta.get("records")),
        bytes=result.pop("bytes", meta.get("bytes")),
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
