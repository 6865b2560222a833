"""Hostile inputs (issue 17 rows): FIFOs, UTF-16/32 files, truncated zstd, --strict on file errors,
empty input directories. Each case ends in a clear result, never a hang or a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.ingest import ingest
from tests.test_workdir_lock import RECORD, ROOT, stored_ids


def lines(n: int, prefix: str = "r") -> str:
    return "".join(RECORD % (f"{prefix}{i}", 1 + i % 28, i, f"{prefix}{i}") + "\n" for i in range(n))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_in_the_input_directory_is_skipped_not_read(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "good.jsonl").write_text(lines(3))
    os.mkfifo(logs / "pipe.jsonl")  # reading it would block forever: nobody writes
    proc = subprocess.run([sys.executable, "-m", "pipeline", "ingest", str(logs), "--out", str(tmp_path / "w")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "not read: 1 path(s) that are not regular files" in proc.stdout and "fifo" in proc.stdout
    manifest = json.loads((tmp_path / "w" / "ingest_manifest.json").read_text())
    assert manifest["paths_not_read"] == [{"path": str(logs / "pipe.jsonl"), "reason": "not_a_regular_file (fifo)"}]
    assert len(stored_ids(tmp_path / "w")) == 3


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-32-le"])
def test_utf16_and_utf32_files_with_a_bom_are_decoded(tmp_path: Path, encoding: str) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    text = lines(5).replace('"hi ', '"héllo ☃ ')
    bom = {"utf-16-be": "\ufeff", "utf-32-le": "\ufeff"}.get(encoding, "")  # plain utf-16/32 write their own
    (logs / "windows.jsonl").write_bytes((bom + text).encode(encoding))
    result = ingest([logs], tmp_path / "w", progress=False)
    assert result.totals["ingested"] == 5 and result.totals["rejected"] == 0
    assert len(stored_ids(tmp_path / "w")) == 5


def test_invalid_utf16_is_a_file_error_naming_utf16(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "bad.jsonl").write_bytes(lines(2).encode("utf-16") + b"\x00\xd8\x41\x00")  # an unpaired surrogate
    result = ingest([logs], tmp_path / "w", progress=False)
    (f,) = result.manifest["files"]
    assert f["status"] == "error" and f["error"].startswith("invalid_utf16_or_32") and "utf-16" in f["error"]
    assert result.totals["ingested"] == 2  # the complete records before it are kept


def test_truncated_zstd_is_a_file_error_and_keeps_the_records_before(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    data = lines(2000).encode()
    cut = zstandard.ZstdCompressor(level=1).compress(data)
    (logs / "cut.jsonl.zst").write_bytes(cut[: len(cut) * 2 // 3])
    (logs / "whole.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(lines(3, "w").encode()))
    result = ingest([logs], tmp_path / "w", progress=False)
    files = {Path(f["path"]).name: f for f in result.manifest["files"]}
    assert files["cut.jsonl.zst"]["status"] == "error"
    assert "truncated zstd stream" in files["cut.jsonl.zst"]["error"]
    assert files["whole.jsonl.zst"]["status"] == "ingested"
    kept = files["cut.jsonl.zst"]["ingested"]
    assert 0 < kept < 2000
    assert len(stored_ids(tmp_path / "w")) == kept + 3
    # Not marked as ingested: fixing the file and re-running reads it again.
    (logs / "cut.jsonl.zst").write_bytes(cut)
    again = ingest([logs], tmp_path / "w", progress=False)
    assert again.totals["rows_written"] == 2000 - kept


def test_strict_fails_on_file_level_errors(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "good.jsonl").write_text(lines(2))
    (logs / "broken.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00 this is not gzip")
    result = CliRunner().invoke(cli, ["ingest", str(logs), "--out", str(tmp_path / "w"), "--strict"])
    assert result.exit_code == 1
    assert "1 file(s) unreadable or cut short" in result.output and "broken.jsonl.gz" in result.output
    assert "Traceback" not in result.output
    assert len(stored_ids(tmp_path / "w")) == 2  # still stored, so the problem can be inspected
    assert CliRunner().invoke(cli, ["ingest", str(logs), "--out", str(tmp_path / "w2")]).exit_code == 0


def test_empty_input_directory_is_a_clear_error_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(cli, ["ingest", str(tmp_path / "empty"), "--out", str(tmp_path / "w")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"No log files in `{tmp_path / 'empty'}` (it is empty)" in result.output
    assert not (tmp_path / "w" / ".store").exists()
    (tmp_path / "empty" / "notes.md").write_text("x")
    result = CliRunner().invoke(cli, ["ingest", str(tmp_path / "empty"), "--out", str(tmp_path / "w")])
    assert result.exit_code == 1 and "notes.md` (not_a_log_file_extension)" in result.output


def test_stages_on_a_store_where_everything_was_rejected(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "bad.jsonl").write_text('{"hello": "world"}\n[1, 2]\n')
    assert CliRunner().invoke(cli, ["ingest", str(logs), "--out", str(tmp_path / "w")]).exit_code == 0
    for command in (["audit"], ["dataset"], ["weekly"]):
        result = CliRunner().invoke(cli, [*command, str(tmp_path / "w")])
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert "holds no requests: all 2 record(s) ingested so far were rejected or skipped" in result.output
    result = CliRunner().invoke(cli, ["report", str(tmp_path / "w")])
    assert result.exit_code == 1 and "Nothing to report" in result.output


def test_stage_run_before_its_input_exists(tmp_path: Path) -> None:
    for command in ("audit", "dataset", "report", "weekly"):
        result = CliRunner().invoke(cli, [command, str(tmp_path / "nothing")])
        assert result.exit_code == 1, result.output
        assert result.output.strip() == (
            f"Error: `{tmp_path / 'nothing'}` does not exist. Run `logaudit ingest LOGS --out {tmp_path / 'nothing'}` first."
        )
        assert not (tmp_path / "nothing").exists()


def huge_record(size: int) -> str:
    """One valid JSON line of about `size` bytes: a real request whose message is enormous."""
    return RECORD % ("huge", 3, "x" * size, "huge") + "\n"


def test_a_record_beyond_the_limit_is_quarantined_and_good_lines_kept(tmp_path: Path) -> None:
    """Issue 17: one valid 300 MB line took the whole ingest down in the store commit. Now a record
    above the per-record limit (default 64 MB) is rejected unread with its size; real processes and
    the real default, with a line just above it."""
    logs = tmp_path / "logs"
    logs.mkdir()
    limit = 64 << 20
    with open(logs / "mixed.jsonl", "w", encoding="utf-8") as f:
        f.write(lines(3, "before"))
        f.write(huge_record(limit + 1000))
        f.write(lines(2, "after"))
    proc = subprocess.run([sys.executable, "-m", "pipeline", "ingest", str(logs), "--out", str(tmp_path / "w")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "record_too_large 1" in proc.stdout
    assert len(stored_ids(tmp_path / "w")) == 5  # every good line kept
    rejects = [json.loads(x) for f in (tmp_path / "w" / "rejects").glob("*.jsonl") for x in f.read_text().splitlines()]
    (rej,) = rejects
    assert rej["reason"] == "record_too_large" and rej["source_line"] == 4
    size = len(huge_record(limit + 1000).encode())
    assert rej["detail"].startswith(f"{size:,} bytes, above the per-record limit of {limit:,} bytes")


@pytest.mark.parametrize("split", [False, True], ids=["whole-file", "byte-ranges"])
def test_record_limit_is_configurable_and_exact(tmp_path: Path, split: bool) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    limit = 4096

    def sized(rid: str, total: int) -> str:
        bare = RECORD % (rid, 3, "", rid) + "\n"
        return RECORD % (rid, 3, "y" * (total - len(bare.encode())), rid) + "\n"

    # The limit counts the record's bytes, not its line break.
    at_limit, over = sized("at", limit + 1), sized("over", limit + 2)
    (logs / "edge.jsonl").write_text(lines(2) + at_limit + over + lines(2, "tail"))
    kwargs = {"chunk_bytes": 2048, "workers": 1} if split else {}
    result = ingest([logs], tmp_path / "w", progress=False, max_record_bytes=limit, **kwargs)
    assert result.totals["rejected"] == 1 and result.manifest["reject_reasons"] == {"record_too_large": 1}
    assert sorted(stored_ids(tmp_path / "w")) == sorted(["r0", "r1", "at", "tail0", "tail1"])
