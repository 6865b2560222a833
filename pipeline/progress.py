"""Progress display for long stages: one small API over tqdm, shared by every stage.

    from pipeline.progress import stage_progress

    with stage_progress("dataset: buckets", total=len(buckets), unit="bucket") as bar:
        for result in results:
            ...
            bar.advance()            # or bar.advance(n)
        bar.note("writing files")    # optional text after the counts

A bar shows counts, rate and ETA (tqdm) on stderr, and only when enabled: `--progress` on the
command line, or by default when stderr is a terminal (`--no-progress` turns it off). Library
callers and tests get no output unless they ask (`enabled=True`) or the CLI called `configure`.
`total=None` shows a running count without an ETA. A disabled bar costs one attribute check per
`advance`, so hot loops may call it per item.

Executors (local pool, Ray) report task completion the same way: `advance()` once per finished
task from the process that collects the results; the bar itself never crosses a process boundary.

`phase(name)` marks a step of a stage without drawing anything (`with phase("audit.cache"):`,
nested phases join with "/"); `current_phase()` reads the mark from any thread. `make bench`
charges its memory samples to it, so a step's peak has a name.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tqdm import tqdm

_enabled: bool | None = None
_phase: tuple[str, ...] = ()  # replaced whole, never mutated: another thread reads it


def configure(enabled: bool | None) -> None:
    """Set the default for this process: True (`--progress`), False (`--no-progress`), None (terminal decides)."""
    global _enabled
    _enabled = enabled


@contextmanager
def enabled_for(enabled: bool | None) -> Iterator[None]:
    """Within the block, bars follow `enabled` (None: leave the current default alone)."""
    global _enabled
    previous = _enabled
    if enabled is not None:
        _enabled = enabled
    try:
        yield
    finally:
        _enabled = previous


def is_enabled(enabled: bool | None = None) -> bool:
    """Explicit argument, else `configure`, else LOGAUDIT_PROGRESS=1/0, else whether stderr is a terminal."""
    if enabled is not None:
        return enabled
    if _enabled is not None:
        return _enabled
    env = os.environ.get("LOGAUDIT_PROGRESS")
    if env in ("0", "1"):
        return env == "1"
    return sys.stderr.isatty()


class StageProgress:
    """What `stage_progress` yields: advance the count, change the total, add a short note."""

    def __init__(self, bar: tqdm | None) -> None:
        self._bar = bar
        self.count = 0

    def advance(self, n: int = 1) -> None:
        self.count += n
        if self._bar is not None:
            self._bar.update(n)

    def set_total(self, total: int | None) -> None:
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def note(self, text: str) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=True)


@contextmanager
def stage_progress(
    desc: str, total: int | None = None, unit: str = "it", enabled: bool | None = None, **tqdm_kwargs: Any
) -> Iterator[StageProgress]:
    """A progress bar for one stage or step (see the module docstring)."""
    if not is_enabled(enabled):
        yield StageProgress(None)
        return
    options: dict[str, Any] = {"unit_scale": unit in ("B", "request", "token"), "dynamic_ncols": True,
                               "mininterval": 0.5, "leave": True, "file": sys.stderr}
    options.update(tqdm_kwargs)
    with tqdm(total=total, desc=desc, unit=unit, **options) as bar:
        yield StageProgress(bar)


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Mark the work within as `name` (inside another phase: "outer/name"); see `current_phase`."""
    global _phase
    previous = _phase
    _phase = (*previous, name)
    try:
        yield
    finally:
        _phase = previous


def current_phase() -> str:
    """The phase this process is in ("" outside any): safe to read from another thread."""
    return "/".join(_phase)
