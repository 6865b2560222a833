"""Near-duplicates in agent traffic (issue #13, part 4): re-runs of an agent session differ only by
the ids and timestamps in their tool turns; the dataset must keep one of each (tests/planted_agents.py)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.dataset import dedup as dd
from pipeline.dataset.examples import Message, dialog_text, dialog_text_segments, tool_turn_text
from pipeline.dataset.stage import build_dataset


@pytest.fixture(scope="module")
def built(agents_world: tuple[Path, dict]) -> tuple[Path, dict]:
    wd, truth = agents_world
    build_dataset(wd)
    return wd, truth


def test_agent_reruns_leave_no_twin(built: tuple[Path, dict]) -> None:
    wd, truth = built
    lineage = pq.read_table(wd / "dataset" / "lineage.parquet").to_pylist()
    kept = {truth[r["request_id"]]["session"] for r in lineage if r["kind"] == "example"}
    root = {t["session"]: t["rerun_of"] or t["session"] for t in truth.values()}
    sessions = {t["session"] for t in truth.values()}
    reruns = {s for s in sessions if root[s] != s}
    assert len(reruns) >= 40  # the world plants enough re-runs to measure a 1% rate
    twins = sum(n for n in Counter(root[s] for s in kept).values() if n > 1)
    assert twins / len(kept) <= 0.01, (twins, len(kept))  # issue target: <= 1% of examples have a twin
    assert twins == 0
    # ... and nothing else is removed: every session that is not a re-run keeps its example.
    assert len(kept) == len(sessions) - len(reruns)


def test_tool_turns_are_masked_prose_is_not() -> None:
    call = {"name": "lookup", "arguments": json.dumps({"q": "refund", "idempotency_key": "9f2c4e1a7b3d5e6f"})}
    a = [Message("user", "Refund order 12 please"), Message("assistant", None, tool_calls=[call]),
         Message("tool", json.dumps({"request_id": "req_e3f9a2b4c5d6", "fetched_at": 1784020323000, "rows": 3})),
         Message("assistant", "Refunded 12 USD.")]
    b = [Message("user", "Refund order 12 please"),
         Message("assistant", None, tool_calls=[{**call, "arguments": call["arguments"].replace("9f2c", "0000")}]),
         Message("tool", json.dumps({"request_id": "req_0a1b2c3d4e5f", "fetched_at": 1784020399999, "rows": 7})),
         Message("assistant", "Refunded 12 USD.")]
    assert dialog_text(a) == dialog_text(b)
    assert "12" in dialog_text(a)  # user and assistant numbers stay: they are content
    assert tool_turn_text('{"id": "req_e3f9a2b4c5d6"}') == '{"id": "#"}'
    c = [*a[:-1], Message("assistant", "Refunded 13 USD.")]
    assert dialog_text(a) != dialog_text(c)


def test_dialog_segments_cut_the_dialog_text_around_the_last_user_turn() -> None:
    call = {"id": "c1", "type": "function", "name": "lookup", "arguments": '{"id": "req_e3f9a2", "n": 12}'}
    dialog = [
        Message("user", "First question?"),
        Message("assistant", None, tool_calls=[call]),
        Message("tool", "   ", tool_call_id="c1"),  # masks to "": an empty part of the text
        Message("assistant", "An answer."),
        Message("user", "Second question, ΟΔΟΣ?", tool_calls=[call]),
        Message("assistant", "Done."),
    ]
    text, segments = dialog_text_segments(dialog)
    assert text == dialog_text(dialog)
    assert segments[1] == "Second question, ΟΔΟΣ?"
    assert segments[0].startswith("First question?\nlookup ") and segments[2].endswith("\nDone.")
    keys, sets, _ = dd.segments_features([segments], 1)
    want_keys, want_sets = dd.texts_features([text])
    assert keys == want_keys and sets[0].tolist() == want_sets[0].tolist()
    no_user = [Message("assistant", "Only an answer.")]
    assert dialog_text_segments(no_user) == ("Only an answer.", ("", "", "Only an answer."))
