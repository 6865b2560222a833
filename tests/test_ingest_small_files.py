"""Many small files: batched into few work units, with exactly the outputs of one unit per file.

Issue 15: 10,000 one-record files took 70x the time of one file with the same records, because
every file paid a unit's fixed cost (a task, a spool file, a Parquet file the commit reads). The
hand-written cases (tests/cases/: every format, joins across files, whole-file stream chunks and
transcripts, broken and unreadable files) are ingested batched and unbatched and must agree in
every row, reject and per-file count.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from format_cases import CASES, read_rows

from pipeline.ingest import stage
from pipeline.ingest.reader import discover


def _ingest(src: Path, workdir: Path) -> tuple[list[dict[str, Any]], dict[str, Any], list[str]]:
    result = stage.ingest([src], workdir, progress=False)
    manifest = {k: v for k, v in result.manifest.items() if k not in ("run_id", "elapsed_s", "previous_runs")}
    rejects = sorted(line for f in (workdir / "rejects").glob("*.jsonl") for line in f.read_text().splitlines())
    return read_rows(workdir), manifest, rejects


def test_plan_batches_small_files_and_splits_large_ones(tmp_path: Path) -> None:
    small = [tmp_path / f"s{i:03d}.jsonl" for i in range(7)]
    for f in small:
        f.write_bytes(b'{"x": 1}\n' * 10)  # 90 bytes each
    big = tmp_path / "big.jsonl"
    big.write_bytes(b'{"x": 1}\n' * 1000)  # 9,000 bytes
    files = [*small[:3], big, *small[3:]]
    units = stage.plan_units(files, chunk_bytes=4000, small_bytes=100, batch_bytes=200, batch_files=3)
    # 200 bytes hold two 90-byte files; a large file closes the batch before it and is split.
    assert [u.paths for u in units if u.end is None] == [
        (str(small[0]), str(small[1])), (str(small[2]),), (str(small[3]), str(small[4])), (str(small[5]), str(small[6]))]
    ranges = [u for u in units if u.end is not None]
    assert ranges and all(u.path == str(big) and not u.more for u in ranges)  # byte ranges, never batched
    assert [u.index for u in units] == list(range(len(units)))
    # small_bytes just above a file's size batches it, just at its size does not
    assert len(stage.plan_units(small[:2], 4000, small_bytes=91, batch_bytes=200)) == 1
    assert len(stage.plan_units(small[:2], 4000, small_bytes=90, batch_bytes=200)) == 2
    # never batched beyond the byte-range size (tests cut files in tiny ranges)
    assert len(stage.plan_units(small[:4], chunk_bytes=100)) == 4


def test_batched_units_give_the_outputs_of_one_unit_per_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "cases"
    shutil.copytree(CASES, src)
    files, _ = discover([str(src)])
    assert len(files) > 40
    planned = stage.plan_units(files, stage.CHUNK_BYTES, small_bytes=stage.SMALL_FILE_BYTES)
    assert len(planned) < len(files) / 10  # batched: a few units, not one per file
    batched = _ingest(src, tmp_path / "batched")
    monkeypatch.setattr(stage, "SMALL_FILE_BYTES", 0)  # one unit per file, as before issue 15
    assert len(stage.plan_units(files, stage.CHUNK_BYTES, small_bytes=0)) == len(files)
    single = _ingest(src, tmp_path / "single")
    rows_b, manifest_b, rejects_b = batched
    rows_s, manifest_s, rejects_s = single
    assert manifest_b["totals"]["rows_written"] > 50 and manifest_b["totals"]["rejected"] > 0
    assert manifest_b["totals"]["files_error"] > 0  # broken files inside a batch fail alone
    assert json.dumps(manifest_b, sort_keys=True, default=str) == json.dumps(manifest_s, sort_keys=True, default=str)
    assert rejects_b == rejects_s
    assert rows_b == rows_s
