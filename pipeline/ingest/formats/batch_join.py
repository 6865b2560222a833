"""Joining batch request lines with their result lines (OpenAI Batch, Anthropic Message Batches).

Requests and results live in different files, in different orders, and the files may be read by
different workers: every line waits in run state (keyed by its own file and line, so nothing is
overwritten) and the pairs are made once, at the end of the run, on (folder, batch file stem,
custom_id). `custom_id`s like `request-0` repeat across batches, hence the folder and stem; a
custom_id repeated inside one batch (a re-run appended to the file) pairs in file order, and a
line without a partner still becomes a row (a request without a result, or a result whose
request file was not given).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pipeline.ingest.formats import Context
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
    st = ctx.format_state(name)
    st.setdefault(side, {})[(*batch_group(ctx), cid, ctx.source_file, ctx.source_line)] = dict(rec)


def pairs(ctx: Context, name: str) -> Iterator[tuple[Mapping[str, Any] | None, Mapping[str, Any] | None, Src]]:
    """(request, result, source of the row) for every pending line; the source is the result's
    line when there is one (the call happened there), else the request's."""
    st = ctx.format_state(name)
    requests: dict[tuple, dict] = st.pop("requests", {}) or {}
    results: dict[tuple, dict] = st.pop("results", {}) or {}
    by_batch: dict[tuple, tuple[list, list]] = defaultdict(lambda: ([], []))
    for key in sorted(requests):
        by_batch[key[:3]][0].append(key)
    for key in sorted(results):
        by_batch[key[:3]][1].append(key)
    left_req: dict[tuple, list] = defaultdict(list)
    left_res: dict[tuple, list] = defaultdict(list)
    for group in sorted(by_batch):
        reqs, ress = by_batch[group]
        for rq, rs in zip(reqs, ress, strict=False):
            yield requests[rq], results[rs], (rs[3], rs[4])
        for rq in reqs[len(ress):]:
            left_req[(group[0], group[2])].append(rq)
        for rs in ress[len(reqs):]:
            left_res[(group[0], group[2])].append(rs)
    # Second chance: the file stems did not line up (e.g. `requests.jsonl` ~ `batch_abc_results.jsonl`);
    # pair a leftover result with the one leftover request of that custom_id in the folder.
    for folder_cid in sorted(set(left_req) | set(left_res)):
        reqs, ress = left_req.get(folder_cid, []), left_res.get(folder_cid, [])
        if len(reqs) == 1 and len(ress) == 1:
            yield requests[reqs[0]], results[ress[0]], (ress[0][3], ress[0][4])
            continue
        for rs in ress:
            yield None, results[rs], (rs[3], rs[4])
        for rq in reqs:
            yield requests[rq], None, (rq[3], rq[4])
