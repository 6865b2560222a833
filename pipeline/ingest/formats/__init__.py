"""Record formats, auto-detected per record. One module per format family.

Adding a format is a local change: write a module here with a `@record_format(...)` parser and
import it below. `detect` must be cheap (it runs on every record until one matches) and strict
enough not to claim other formats' records. Detection runs in ascending `order`: specific
wrappers (batch lines, gateway rows, traces: 10–49) before generic envelopes (50–89) before bare
provider bodies (90+).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.ingest.rows import Row


@dataclass
class Context:
    """What a parser knows about where a record came from, plus run-wide state for joins."""

    source_file: str = ""
    source_line: int = 0
    state: dict[str, Any] = field(default_factory=dict)
    # Set by the ingest core: reject(source_file, source_line, reason, detail) for a record that was
    # accepted into state earlier and turns out bad when it is finally assembled (in `finish`).
    reject: Callable[[str, int, str, str], None] = lambda file, line, reason, detail: None

    def format_state(self, name: str) -> dict[str, Any]:
        """Mutable state kept for one format over the whole run (e.g. unmatched batch inputs)."""
        return self.state.setdefault(name, {})


Parse = Callable[[Mapping[str, Any], Context], Iterable[Row]]
Finish = Callable[[Context], Iterable[Row]]


@dataclass(frozen=True)
class RecordFormat:
    name: str
    description: str
    detect: Callable[[Mapping[str, Any]], bool]
    parse: Parse
    finish: Finish | None = None
    order: int = 50


FORMATS: list[RecordFormat] = []


def record_format(
    name: str,
    description: str,
    detect: Callable[[Mapping[str, Any]], bool],
    finish: Finish | None = None,
    order: int = 50,
) -> Callable[[Parse], Parse]:
    """Register a record parser. It returns rows (possibly none, if the record was merged into
    state for a later row), or raises `RecordError` (bad record) / `Skip` (not an API call)."""

    def wrap(parse: Parse) -> Parse:
        FORMATS.append(RecordFormat(name, description, detect, parse, finish, order))
        FORMATS.sort(key=lambda f: f.order)  # stable: equal orders keep registration order
        return parse

    return wrap


def detect_format(record: Mapping[str, Any]) -> RecordFormat | None:
    for fmt in FORMATS:
        try:
            if fmt.detect(record):
                return fmt
        except (AttributeError, TypeError, KeyError):
            continue
    return None


# Importing a module registers its formats; detection order comes from each format's `order`.
from pipeline.ingest.formats import (  # noqa: E402,F401
    envelope,
    litellm,
    openai_batch,
    provider_bodies,
)
