"""Claude Code sub-agent replays: a message written again in another file (`<session>/subagents/agent-*.jsonl`)
with a new `requestId` but the same `message.id` and content is one API call (pipeline/ingest/sql/replay_fp.sql)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from format_cases import CASES, read_rows

from pipeline.ingest import ingest

SESSION = "3fa2f6ab-5bc5-4c42-96cf-f0e78d71706d"
MAIN = CASES / "claude_code" / f"{SESSION}.jsonl"


def _line(uuid: str, parent: str | None, request_id: str | None, msg: dict) -> str:
    rec = {"sessionId": SESSION, "agentId": "a1f3", "cwd": "/home/dev/payments", "version": "2.4.1", "type": msg["role"],
           "uuid": uuid, "parentUuid": parent, "isSidechain": True, "timestamp": "2026-07-14T09:12:30.000Z",
           "message": msg}
    if request_id:
        rec["requestId"] = request_id
    return json.dumps(rec)


def _assistant(msg_id: str, content: list, out: int) -> dict:
    return {"id": msg_id, "type": "message", "role": "assistant", "model": "claude-opus-4-6", "content": content,
            "stop_reason": "end_turn", "usage": {"input_tokens": 3, "cache_read_input_tokens": 24512, "output_tokens": out}}


def _main_lines() -> dict[str, dict]:
    return {json.loads(x).get("uuid"): json.loads(x) for x in MAIN.read_text().splitlines()}


def _subagent_file() -> str:
    """The sub-agent's transcript: msg_01AB replayed (both content lines, same usage) under a new
    requestId; msg_01AC with the same id but other content (not a replay); one call of its own."""
    main = _main_lines()
    a1a, a1b = main["a1a"]["message"], main["a1b"]["message"]
    lines = [
        _line("t1", None, None, {"role": "user", "content": "add a unit test for refund rounding"}),
        _line("t2", "t1", "req_011CZ", a1a),
        _line("t3", "t2", "req_011CZ", a1b),
        _line("t4", "t3", "req_011DA", _assistant("msg_01AC", [{"type": "text", "text": "Something else."}], 12)),
        _line("t5", "t4", "req_011DB", _assistant("msg_01SD", [{"type": "text", "text": "Sub-agent done."}], 7)),
    ]
    return "\n".join(lines) + "\n"


def _layout(root: Path, with_main: bool = True, with_sub: bool = True) -> Path:
    proj = root / "projects" / "-home-dev-payments"
    (proj / SESSION / "subagents").mkdir(parents=True, exist_ok=True)
    if with_main:
        shutil.copy(MAIN, proj / f"{SESSION}.jsonl")
    if with_sub:
        (proj / SESSION / "subagents" / "agent-a1f3.jsonl").write_text(_subagent_file())
    return root / "projects"


def _calls(work: Path) -> dict[str, dict]:
    return {r["request_id"]: r for r in read_rows(work)}


def test_replayed_message_counts_once_and_the_parent_copy_is_kept(tmp_path: Path) -> None:
    logs = _layout(tmp_path)
    result = ingest([logs], tmp_path / "work", progress=False)
    rows = _calls(tmp_path / "work")
    # main file: req_011CQ (msg_01AB), req_011CR (msg_01AC), req_011CS; sub-agent: its own msg_01SD
    # and msg_01AC with other content (same id, not the same response: kept); msg_01AB once.
    assert sorted(rows) == ["req_011CQ", "req_011CR", "req_011CS", "req_011DA", "req_011DB"]
    assert [r["response_id"] for r in rows.values()].count("msg_01AB") == 1
    assert rows["req_011CQ"]["source_file"].endswith(f"{SESSION}.jsonl")  # the parent's copy, not the sidechain's
    assert sum(r["out_total"] for r in rows.values()) == 96 + 40 + 12 + 12 + 7
    assert result.totals["rows_duplicate"] == 1
    sub = [f for f in result.manifest["files"] if "subagents" in f["path"]][0]
    assert (sub["rows_emitted"], sub["rows_written"], sub["rows_duplicate"]) == (3, 2, 1)


@pytest.mark.parametrize("main_first", [True, False])
def test_replay_in_a_later_run_counts_once(tmp_path: Path, main_first: bool) -> None:
    work = tmp_path / "work"
    logs = _layout(tmp_path, with_main=main_first, with_sub=not main_first)
    ingest([logs], work, progress=False)
    _layout(tmp_path, with_main=not main_first, with_sub=main_first)
    later = ingest([logs], work, progress=False)
    rows = _calls(work)
    assert len(rows) == 5 and later.totals["rows_duplicate"] == 1
    assert [r["response_id"] for r in rows.values()].count("msg_01AB") == 1
    assert sum(r["out_total"] for r in rows.values()) == 96 + 40 + 12 + 12 + 7
    for f in (logs.rglob("*.jsonl")):
        f.touch()
    assert ingest([logs], work, progress=False).totals["rows_written"] == 0
