"""Bad input never crashes the ingest and is never lost: each case ends in rejects with a reason."""

from __future__ import annotations

import gzip
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

GOOD = (
    '{"id":"g%d","timestamp":"2026-07-14T09:00:00Z","provider":"openai","endpoint":"/v1/chat/completions",'
    '"request":{"model":"gpt-4o","messages":[{"role":"user","content":"hi %d"}]},'
    '"response":{"id":"chatcmpl-%d","object":"chat.completion","created":1784020323,"model":"gpt-4o",'
    '"choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],'
    '"usage":{"prompt_tokens":9,"completion_tokens":1}}}'
)


def good(i: int) -> str:
    return GOOD % (i, i, i)


def rejects(workdir: Path) -> list[dict]:
    out = []
    for f in sorted((workdir / "rejects").glob("*.jsonl")):
        out += [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines()]
    return out


def reconcile(manifest: dict) -> None:
    for f in manifest["files"]:
        assert f["lines_read"] == f["blank"] + f["ingested"] + f["skipped"] + f["rejected"], f


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("truncated.jsonl", good(1) + "\n" + good(2)[:80] + "\n", "invalid_json"),
        ("utf8.jsonl", (good(1) + "\n").encode() + b'{"id": "\xff\xfe bad"}\n', "invalid_utf8"),
        ("array.jsonl", good(1) + '\n[{"id": 1}]\n', "not_an_object"),
        ("scalar.jsonl", good(1) + "\n42\n", "not_an_object"),
        ("unknown.jsonl", good(1) + '\n{"hello": "world"}\n', "unknown_format"),
        (
            "wrongtype.jsonl",
            good(1) + '\n{"id":"w","request":{"model":"gpt-4o","messages":"not a list"},"response":null}\n',
            "unknown_body_format",
        ),
        (
            "missing.jsonl",
            good(1) + '\n{"id":"m","request":{"model":"gpt-4o","messages":[{"content":"no role"}]},"response":null}\n',
            "missing_field",
        ),
        (
            "badts.jsonl",
            good(1) + '\n' + good(3).replace('"2026-07-14T09:00:00Z"', '"yesterday-ish"') + "\n",
            "bad_timestamp",
        ),
    ],
)
def test_bad_record_is_rejected_with_reason(tmp_path: Path, name: str, content: str | bytes, reason: str) -> None:
    f = tmp_path / "logs" / name
    f.parent.mkdir()
    f.write_bytes(content if isinstance(content, bytes) else content.encode())
    result = ingest([f], tmp_path / "w", progress=False)
    reconcile(result.manifest)
    assert result.totals["rows_written"] == 1 and result.totals["rejected"] == 1
    (rej,) = rejects(tmp_path / "w")
    assert rej["reason"] == reason and rej["source_line"] == 2 and rej["source_file"] == str(f)
    assert rej["kind"] == "rejected" and rej["detail"]


def test_bom_crlf_blank_lines_and_multi_megabyte_line(tmp_path: Path) -> None:
    big = good(5).replace('"hi 5"', json.dumps("x" * 3_000_000))
    f = tmp_path / "mixed.jsonl"
    f.write_bytes(b"\xef\xbb\xbf" + f"{good(1)}\r\n\r\n   \r\n{good(2)}\r\n{big}\r\n".encode())
    result = ingest([f], tmp_path / "w", progress=False)
    reconcile(result.manifest)
    t = result.totals
    assert (t["lines_read"], t["blank"], t["ingested"], t["rejected"], t["rows_written"]) == (5, 2, 3, 0, 3)


def test_empty_and_compressed_files(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "empty.jsonl").write_bytes(b"")
    (logs / "empty.json").write_bytes(b"")
    (logs / "a.jsonl.gz").write_bytes(gzip.compress((good(1) + "\n" + good(2) + "\n").encode()))
    (logs / "b.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress((good(3) + "\n").encode()))
    (logs / "c.json").write_text(json.dumps([json.loads(good(4)), json.loads(good(5))]))
    (logs / "d.json").write_text(json.dumps(json.loads(good(6)), indent=2))  # pretty-printed single object
    (logs / "notes.md").write_text("not a log")
    result = ingest([logs], tmp_path / "w", progress=False)
    reconcile(result.manifest)
    assert result.totals["rows_written"] == 6 and result.totals["rejected"] == 0
    assert {p["reason"] for p in result.manifest["paths_not_read"]} == {"not_a_log_file_extension"}


def test_corrupt_gzip_and_unreadable_file(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    data = gzip.compress(("\n".join(good(i) for i in range(200)) + "\n").encode())
    (logs / "cut.jsonl.gz").write_bytes(data[: len(data) // 2])  # truncated gzip stream
    (logs / "ok.jsonl").write_text(good(999) + "\n")
    locked = logs / "locked.jsonl"
    locked.write_text(good(1000) + "\n")
    locked.chmod(0)
    result = ingest([logs], tmp_path / "w", progress=False)
    files = {Path(f["path"]).name: f for f in result.manifest["files"]}
    assert files["cut.jsonl.gz"]["status"] == "error" and "corrupt_compressed_file" in files["cut.jsonl.gz"]["error"]
    reconcile(result.manifest)
    assert files["ok.jsonl"]["rows_written"] == 1
    reasons = {r["reason"] for r in rejects(tmp_path / "w")}
    assert "corrupt_compressed_file" in reasons
    if os.geteuid() != 0:  # root can read a chmod-0 file
        assert files["locked.jsonl"]["status"] == "error" and "unreadable_file" in reasons


def test_strict_mode_exits_nonzero(tmp_path: Path) -> None:
    f = tmp_path / "x.jsonl"
    f.write_text(good(1) + "\n{broken\n")
    runner = CliRunner()
    res = runner.invoke(cli, ["ingest", str(f), "--out", str(tmp_path / "w"), "--strict"])
    assert res.exit_code == 1
    assert res.output.startswith("Error: 1 record(s) rejected (strict mode)")
    res = runner.invoke(cli, ["ingest", str(f), "--out", str(tmp_path / "w2")])
    assert res.exit_code == 0


KILL_SCRIPT = """
import sys
from pathlib import Path
from pipeline.ingest import ingest
ingest([sys.argv[1]], Path(sys.argv[2]), progress=False, batch_rows=200)
"""


def _store_state(workdir: Path) -> tuple[int, frozenset[str]]:
    import duckdb

    files = list((workdir / "requests").glob("*/*.parquet"))
    if not files:
        return 0, frozenset()
    con = duckdb.connect()
    ids = con.execute("SELECT request_id FROM read_parquet(?)", [[str(f) for f in files]]).fetchall()
    return len(ids), frozenset(i for (i,) in ids)


@pytest.mark.slow
def test_sigkill_at_any_moment_leaves_store_before_or_after(tmp_path: Path) -> None:
    """Kill a second ingest at several points; the store is always exactly the old or the new one."""
    week1 = tmp_path / "week1.jsonl"
    week1.write_text("\n".join(good(i) for i in range(3000)) + "\n")
    week2 = tmp_path / "week2.jsonl"
    week2.write_text("\n".join(good(i) for i in range(3000, 9000)) + "\n")
    base = tmp_path / "base"
    ingest([week1], base, progress=False)
    before = _store_state(base)
    assert before[0] == 3000
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    # A full uninterrupted run gives the "after" state and its duration.
    import shutil
    import time

    full = tmp_path / "full"
    shutil.copytree(base, full, symlinks=True)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(week2), str(full)], env=env, check=True)
    duration = time.perf_counter() - t0
    after = _store_state(full)
    assert after[0] == 9000
    outcomes = set()
    for fraction in (0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.9, 0.97):
        work = tmp_path / f"kill{fraction}"
        shutil.copytree(base, work, symlinks=True)
        proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(week2), str(work)], env=env)
        time.sleep(duration * fraction)
        proc.kill()
        proc.wait()
        state = _store_state(work)
        assert state in (before, after), f"half-written store after kill at {fraction:.0%}"
        outcomes.add(state == after)
        # A re-run after the crash converges to "after" and cleans up the dead run's leftovers.
        ingest([week2], work, progress=False)
        assert _store_state(work) == after
        assert not list((work / ".store").glob("tmp-*"))
        assert len([p for p in (work / ".store").iterdir() if p.name.startswith("v")]) == 1
    assert False in outcomes  # at least one kill landed before the commit point
