"""Joining batch request lines with their result lines (OpenAI Batch, Anthropic Message Batches).

Requests and results live in different files, in different orders, and the files may be read by
different workers: every line waits in the run's staging folder on disk (`Context.pend`; a million
batch lines held in run state made the driver's memory grow with the input: ~0.7 GB at 1 M
requests) and the pairs are made once, at the end of the run, by DuckDB (`sql/batch_pairs.sql`),
on (folder, batch file stem, custom_id). `custom_id`s like `request-0` repeat across batches, hence
the folder and stem; a custom_id repeated inside one batch (a re-run appended to the file) pairs in
file order; lines left over whose file stems did not line up (`requests.jsonl` ~
`batch_abc_results.jsonl`) pair when the folder holds exactly one of each for that custom_id; a line
without a partner still becomes a row (a request without a result, or a result whose request file
was not given).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from pipeline.ingest.formats import Context, PendingLine
from pipeline.ingest.rows import RecordError, as_str

Src = tuple[str, int]


def batch_group(ctx: Context) -> tuple[str, str]:
    """Batch lines pair within one folder and file stem (`x_batch_input` ~ `x_batch_output`)."""
    p = Path(ctx.source_file)
    stem = p.name.split(".")[0]
    stem = re.sub(r"(input|output|results?|requests?|errors?)", "", stem, flags=re.IGNORECASE)
    return str(p.parent), stem


def pend(ctx: Context, name: str, side: str, rec: Mapping[str, Any]) -> None:
    """Keep one request (`side="requests"`) or result line until the end of the run."""
    cid = as_str(rec.get("custom_id"))
    if not cid:
        raise RecordError("missing_field", "batch line has an empty `custom_id`")
    folder, stem = batch_group(ctx)
    ctx.pend(PendingLine(name, side, folder, stem, cid, ctx.source_file, ctx.source_line,
                         orjson.dumps(rec).decode()))


def pairs(ctx: Context, name: str) -> Iterator[tuple[Mapping[str, Any] | None, Mapping[str, Any] | None, Src]]:
    """(request, result, source of the row) for every pending line of format `name`; the source is
    the result's line when there is one (the call happened there), else the request's."""
    for request, result, file, line in ctx.pending_pairs(name):
        yield (orjson.loads(request) if request is not None else None,
               orjson.loads(result) if result is not None else None, (file, line))
