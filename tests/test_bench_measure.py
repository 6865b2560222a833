"""The bench's memory samplers: the PSS of a tree is read only when it could be a new peak, and no
peak is missed for it (the samples are taken by hand here, not by the sampling thread)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from bench import measure
from bench.measure import PhaseSampler, TreeSampler, _pss_mb
from pipeline.progress import phase

GROW_MB = 200


def _touched(mb: int) -> np.ndarray:
    return np.ones(mb << 20, dtype=np.uint8)  # every page written: resident, unlike a zeroed allocation


def test_the_pss_is_read_when_the_tree_grows_and_skipped_below_the_peak() -> None:
    sampler = TreeSampler(os.getpid())
    first = sampler.sample()
    assert first is not None and sampler.pss_reads == 1  # no peak yet: read
    sampler.peak_mb = first

    block = _touched(GROW_MB)
    grown = sampler.sample()  # RSS grew by more than the slack: could be a new peak, so read
    assert grown is not None and grown >= first + 0.9 * GROW_MB
    assert abs(grown - _pss_mb(os.getpid())) < 0.25 * GROW_MB
    sampler.peak_mb = grown
    del block

    assert sampler.sample() is None  # below the peak by the freed block: the costly read is skipped
    assert sampler.pss_reads == 2

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert sampler.sample() is not None  # a process joined the tree: its shared pages change the split
        assert sampler.sample() is None
    finally:
        child.kill()
        child.wait()
    assert sampler.sample() is not None and sampler.pss_reads == 4  # ... and left it

    sampler.FULL_READ_S = 0.0  # never skipped for longer than FULL_READ_S
    assert sampler.sample() is not None and sampler.pss_reads == 5


def test_each_phase_gets_its_own_peak() -> None:
    sampler = PhaseSampler()
    with phase("bench-test-a"):
        a = sampler.sample()
        assert a is not None
    sampler.peak_mb = a
    with phase("bench-test-b"):
        b = sampler.sample()  # a phase without a peak yet is read, whatever the whole run's peak
        assert b is not None
        assert sampler.sample() is None  # then skipped while nothing grows
    assert sampler.phases["bench-test-a"]["samples"] == 1
    assert sampler.phases["bench-test-b"]["samples"] == 2
    assert sampler.phases["bench-test-b"]["peak_tree_mb"] == round(b, 1)


def test_a_new_phase_is_read_after_the_rss_fell_by_more_than_the_pss(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shared pages unmapped: the RSS falls by their size, the PSS by less. The first sample of the
    next phase must still be read (a bound of last PSS + RSS change went below zero and skipped it)."""
    readings = {"rss": 400.0, "pss": 200.0}
    monkeypatch.setattr(measure, "_rss_mb", lambda pid: readings["rss"])
    monkeypatch.setattr(measure, "_pss_mb", lambda pid: readings["pss"])
    sampler = PhaseSampler()
    monkeypatch.setattr(sampler, "tree_pids", lambda: [sampler.pid])
    with phase("bench-test-c"):
        assert sampler.sample() == 200.0
    readings.update(rss=100.0, pss=150.0)
    with phase("bench-test-d"):
        assert sampler.sample() == 150.0
    assert sampler.phases["bench-test-d"]["peak_tree_mb"] == 150.0
