"""The dataset reads the audit's token count of each request's new turn (cache_requests.new_turn_*)
instead of tokenizing the same text a second time: the counts are the tokenizer's, the dataset is
byte-identical with or without them, and a count is used only under the encoding it was made with."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipeline.dataset import bucket, build_dataset
from pipeline.tokens import TokenCounter, text_key


def _cache_requests(workdir: Path) -> Path:
    return Path(os.path.realpath(workdir / "audit" / "cache_requests.parquet"))


@pytest.fixture
def workdir_copy(sample_run: Any, tmp_path: Path) -> Path:
    """The sample run's WORKDIR (read-only, shared) copied, so a test may rewrite its audit tables."""
    dest = tmp_path / "work"
    shutil.copytree(sample_run.workdir, dest, symlinks=True)
    return dest


def _rewrite_counts(workdir: Path, **columns: Any) -> None:
    """Replace columns of audit/cache_requests.parquet (a value, or None to drop the column)."""
    path = _cache_requests(workdir)
    table = pq.read_table(path)
    for name, value in columns.items():
        i = table.schema.get_field_index(name)
        table = table.remove_column(i) if value is None else table.set_column(i, name, value(table.column(name)))
    path.unlink()  # hard-linked from the shared run's version: never write through the link
    pq.write_table(table, path)


def _build_fresh(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """`build_dataset` with empty token memos: a bucket task run in this process would otherwise find
    the counts an earlier build primed (facts about a text, unless a test planted them wrong)."""
    monkeypatch.setattr(bucket, "_COUNTERS", {})
    return build_dataset(workdir).manifest


def _outputs(workdir: Path) -> tuple[dict[str, bytes], dict[str, Any]]:
    files = {p.name: p.read_bytes() for p in sorted((workdir / "dataset").glob("**/*.jsonl"))}
    manifest = json.loads((workdir / "dataset" / "manifest.json").read_text(encoding="utf-8"))
    return files, manifest


def test_each_new_turn_is_counted_by_the_audit_with_the_tokenizer(sample_run: Any) -> None:
    workdir = sample_run.workdir
    counts = pq.read_table(_cache_requests(workdir),
                           columns=["request_id", "encoding", "new_turn_key", "new_turn_tokens"]).to_pylist()
    con = duckdb.connect()
    last = dict(con.sql(
        f"SELECT request_id, messages[len(messages)] FROM read_parquet('{workdir}/requests/*/*.parquet')"
    ).fetchall())
    counted = [r for r in counts if r["new_turn_key"] is not None]
    assert len(counted) > 0.9 * len(counts)
    counters = {e: TokenCounter(e) for e in {r["encoding"] for r in counted}}
    for r in random.Random(5).sample(counted, 300):
        message = last[r["request_id"]]
        assert message["role"] != "assistant"
        assert r["new_turn_key"] == text_key(message["content"])
        assert r["new_turn_tokens"] == len(counters[r["encoding"]].encoding.encode_ordinary(message["content"]))
    # a request whose prompt ends with the assistant's turn (or has none) has no new turn to count
    for r in counts:
        message = last.get(r["request_id"])
        if message is None or message["role"] == "assistant" or not message["content"]:
            assert r["new_turn_key"] is None and r["new_turn_tokens"] is None
    manifest = json.loads((workdir / "dataset" / "manifest.json").read_text(encoding="utf-8"))
    used = sum(1 for r in counted if r["encoding"] == manifest["tokens"]["encoding"])
    assert manifest["tokens"]["counts_from_audit"] == used > 0


def test_the_dataset_is_the_same_with_or_without_the_audit_counts(sample_run: Any, workdir_copy: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    files, manifest = _outputs(sample_run.workdir)
    assert manifest["tokens"]["counts_from_audit"] > 0
    _rewrite_counts(workdir_copy, new_turn_key=None, new_turn_tokens=None)  # an audit from before the counts
    _build_fresh(workdir_copy, monkeypatch)
    files_without, manifest_without = _outputs(workdir_copy)
    assert files_without == files
    assert manifest_without["tokens"] == {**manifest["tokens"], "counts_from_audit": 0}


def test_a_count_is_used_only_under_its_own_encoding(sample_run: Any, workdir_copy: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _, manifest = _outputs(sample_run.workdir)
    # Counts off by 1,000 tokens each: the dataset's totals show they are read (never how a real audit
    # looks; it proves the dataset does not tokenize these texts again).
    _rewrite_counts(workdir_copy, new_turn_tokens=lambda c: pc.add(c, 1000))
    totals = _build_fresh(workdir_copy, monkeypatch)["tokens"]
    assert totals["train"] > manifest["tokens"]["train"] + 1000
    # The same counts under another encoding are not this dataset's: ignored, the texts tokenized here.
    _rewrite_counts(workdir_copy, encoding=lambda c: pc.if_else(pc.is_valid(c), "cl100k_base", c))
    totals = _build_fresh(workdir_copy, monkeypatch)["tokens"]
    assert totals == {**manifest["tokens"], "counts_from_audit": 0}
