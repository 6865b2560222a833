"""The partition step's `strip_prefix` macro (the conversation start that picks a text's bucket)
equals its plain definition, rtrim(left(ltrim(x, ws), 256), ws), with `ws` every character
`str.strip()` removes: on texts that start or end (at the 256th kept character) with each of those
characters, runs of them just inside and outside the 256 and 512 character reads, multi-byte
characters, and texts of nothing but them."""

from __future__ import annotations

import duckdb

from pipeline.dataset import assemble
from pipeline.dataset.bucket import whitespace


def test_strip_prefix_equals_its_plain_definition() -> None:
    ws = whitespace()
    texts = ["", "x", "é" * 300, "ab" + " " * 254 + "c", "日本語" * 100 + " "]
    for c in ws:
        for k in (1, 255, 256, 257, 511, 512, 513, 600):
            texts += [c * k + "w" + c * k, c * k, "a" * k + c + "b" * 300, "a" * (256 - min(k, 255)) + c * k]
    con = duckdb.connect()
    assemble.execute(con, "rtrim_fast_macro")
    assemble.execute(con, "strip_prefix_macro")
    rows = con.execute("SELECT t, strip_prefix(t, $ws), rtrim(left(ltrim(t, $ws), 256), $ws) FROM unnest($texts) u(t)",
                       {"ws": ws, "texts": texts}).fetchall()
    assert len(rows) == len(texts)
    assert [(t, got) for t, got, want in rows if got != want] == []
    assert all(got == t.strip(ws)[:256].strip(ws) for t, got, _ in rows)  # and Python's own strip agrees
