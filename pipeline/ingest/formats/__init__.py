"""Record formats, auto-detected per record. One module per format family.

Adding a format is a local change: write a module here with a `@record_format(...)` parser and
import it below. `detect` must be cheap (it runs on every record until one matches) and strict
enough not to claim other formats' records. Detection runs in ascending `order`: specific
wrappers (batch lines, gateway rows, traces: 10–49) before generic envelopes (50–89) before bare
provider bodies (90+).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.ingest.rows import Row, Skip


@dataclass(frozen=True)
class PendingLine:
    """A batch line kept until the end of the run, keyed by what pairs it (`batch_join`)."""

    format: str
    side: str  # "requests" | "results"
    folder: str
    stem: str
    custom_id: str
    source_file: str
    source_line: int
    record: str  # the line's JSON object


def _no_pending_store() -> Any:
    raise RuntimeError("this Context has no pending-line store (the ingest core sets one)")


@dataclass
class Context:
    """What a parser knows about where a record came from, plus run-wide state for joins."""

    source_file: str = ""
    source_line: int = 0
    state: dict[str, Any] = field(default_factory=dict)
    # Set by the ingest core: reject(source_file, source_line, reason, detail) for a record that was
    # accepted into state earlier and turns out bad when it is finally assembled (in `finish`).
    reject: Callable[[str, int, str, str], None] = lambda file, line, reason, detail: None
    # Set by the ingest core: skip_item(reason, detail) for one item inside a container record (a
    # non-LLM span of a trace export, an image call in a HAR file) that is valid but not an LLM call.
    # The record itself still counts as ingested; the item is listed in rejects as `skipped`.
    skip_item: Callable[[str, str], None] = lambda reason, detail: None
    # Per-unit scratch space (records of the file being read, e.g. stream chunks); never merged
    # across units, cleared by the formats' `finish_file`.
    local: dict[str, Any] = field(default_factory=dict)
    # Set by the ingest core: lines that wait for a partner until the end of the run (batch requests
    # and results) are kept on disk in the run's staging folder, not in `state` (which travels back
    # to the driver and grew with the input): `pend(PendingLine)` in a unit, and in the driver's
    # `finish`, `pending_pairs(format)` -> (request JSON | None, result JSON | None, file, line).
    pend: Callable[[PendingLine], None] = lambda line: _no_pending_store()
    pending_pairs: Callable[[str], Iterator[tuple[str | None, str | None, str, int]]] = (
        lambda name: _no_pending_store())

    def format_state(self, name: str) -> dict[str, Any]:
        """Mutable state kept for one format over the whole run (e.g. unmatched batch inputs)."""
        return self.state.setdefault(name, {})

    def file_state(self, name: str) -> dict[str, Any]:
        """Scratch state of one format for the file being read (see `RecordFormat.finish_file`)."""
        return self.local.setdefault(name, {}).setdefault(self.source_file, {})


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
    # Called by the core when the records of one file (or unit of work) have all been read, with
    # `ctx.source_file` still set: emits what the format aggregated from them (stream chunks ->
    # one call, transcript lines -> one row per API message). Such formats also set `whole_file`:
    # their records depend on each other in file order, so the file must not be split into
    # byte ranges read by different workers.
    finish_file: Finish | None = None
    whole_file: bool = False


FORMATS: list[RecordFormat] = []


def record_format(
    name: str,
    description: str,
    detect: Callable[[Mapping[str, Any]], bool],
    finish: Finish | None = None,
    order: int = 50,
    finish_file: Finish | None = None,
) -> Callable[[Parse], Parse]:
    """Register a record parser. It returns rows (possibly none, if the record was merged into
    state for a later row), or raises `RecordError` (bad record) / `Skip` (not an API call)."""

    def wrap(parse: Parse) -> Parse:
        FORMATS.append(
            RecordFormat(name, description, detect, parse, finish, order, finish_file, whole_file=finish_file is not None)
        )
        FORMATS.sort(key=lambda f: f.order)  # stable: equal orders keep registration order
        return parse

    return wrap


def skip_format(
    name: str,
    description: str,
    detect: Callable[[Mapping[str, Any]], bool],
    why: Callable[[Mapping[str, Any]], str],
    order: int = 50,
    reason: str = "not_an_llm_call",
) -> Parse:
    """Register a shape that is valid but holds no model call (job status, trace summaries, metrics):
    each of its records is skipped with `reason` and the detail `why(record)`, never rejected."""

    def parse(rec: Mapping[str, Any], ctx: Context) -> list[Row]:
        raise Skip(reason, why(rec))

    return record_format(name, description, detect, order=order)(parse)


def finish_file_rows(ctx: Context) -> Iterator[Row]:
    """Rows the formats aggregated from the file just read (`ctx.source_file`); the core calls this
    once per file or unit of work, after its last record."""
    for fmt in FORMATS:
        if fmt.finish_file is not None:
            yield from fmt.finish_file(ctx)
    ctx.local.clear()


def needs_whole_file(first_record: Mapping[str, Any]) -> bool:
    """Whether a file whose first record is this must be read by one worker, in order."""
    fmt = detect_format(first_record)
    return fmt is not None and fmt.whole_file


# --- row stages: run-wide passes over the rows of every format ---------------------------------


@dataclass(frozen=True)
class RowStage:
    """A pass over every row, whatever format produced it (e.g. rebuilding Responses API chains).

    `process` returns the row (possibly changed), or None to hold it back in `ctx.state`;
    `finish` runs once at the end of the run and returns the held rows.
    """

    name: str
    process: Callable[[Row, Context], Row | None]
    finish: Finish


ROW_STAGES: list[RowStage] = []


def row_stage(name: str, finish: Finish) -> Callable[[Callable[[Row, Context], Row | None]], Callable[[Row, Context], Row | None]]:
    def wrap(process: Callable[[Row, Context], Row | None]) -> Callable[[Row, Context], Row | None]:
        ROW_STAGES.append(RowStage(name, process, finish))
        return process

    return wrap


def run_row_stages(rows: Iterable[Row], ctx: Context) -> list[Row]:
    """The rows that pass every stage now (held rows come back from `finish_row_stages`)."""
    out = []
    for row in rows:
        kept: Row | None = row
        for stage in ROW_STAGES:
            kept = stage.process(kept, ctx)
            if kept is None:
                break
        if kept is not None:
            out.append(kept)
    return out


def finish_row_stages(ctx: Context) -> Iterator[Row]:
    for stage in ROW_STAGES:
        yield from stage.finish(ctx)


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
    anthropic_batch,
    batch_status,
    bedrock_log,
    claude_code,
    codex,
    envelope,
    helicone,
    http_captures,
    inspect_log,
    langfuse,
    langfuse_trace,
    langsmith,
    langsmith_batch,
    litellm,
    openai_batch,
    otel,
    otel_console,
    provider_bodies,
    responses_chain,
    streams,
    vcr,
)
