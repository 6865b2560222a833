"""The column paths of the cache audit give what the row paths gave: `MessageColumns.blocks` equals
`request_blocks` over the same messages (whole, sliced, cut to the first messages with a trailing
assistant stub), and `simulate_partition(rows, B, rules)` equals replaying copies of the rows
carrying those rules (what the calibration did before its replays became tasks)."""

from __future__ import annotations

import dataclasses

import pyarrow as pa
import pytest

from audit.cache_sim import SimRow, simulate_partition
from audit.prices import CacheRules
from audit.token_accounting import MessageColumns, TokenMemo, count_blocks, count_blocks_naive, request_blocks
from schemas.logs import MESSAGE

CALL = {"id": "c1", "type": "function", "name": "lookup", "arguments": '{"q": 1}'}
REQUESTS: list[dict] = [
    {"system_text": "You are terse.", "tools_json": '[{"name": "lookup", "parameters": {}}]', "provider": "openai",
     "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": None, "tool_calls": [CALL]},
                  {"role": "tool", "content": "42", "tool_call_id": "c1", "name": "lookup"},
                  {"role": "assistant", "content": "It is 42.", "parts_json": '[{"type": "thinking"}]'},
                  {"role": "user", "content": "thanks"}]},
    {"system_text": None, "tools_json": None, "provider": "anthropic", "messages": None},
    {"system_text": None, "tools_json": None, "provider": "anthropic", "messages": []},
    {"system_text": None, "tools_json": None, "provider": "openai",
     "messages": [{"role": "developer", "content": "Be kind."}, {"role": None, "content": "no role"},
                  {"role": "assistant", "content": ""}, {"role": "user", "content": "again \u00e9"}]},
    {"system_text": "Sys", "tools_json": None, "provider": "bedrock",
     "messages": [{"role": "assistant", "content": "first"}, {"role": "user", "content": None, "parts_json": "[1]"}]},
]


def _batch() -> pa.RecordBatch:
    column = pa.array([[{f: m.get(f) for f in MESSAGE.names} for m in r["messages"]] if r["messages"] is not None
                       else None for r in REQUESTS], type=pa.list_(MESSAGE))
    return pa.record_batch({"messages": column})


@pytest.mark.parametrize("start", [0, 1, 3])
def test_message_columns_give_the_request_blocks(start: int) -> None:
    batch = _batch().slice(start)  # a slice's offsets point into its parent's messages
    columns = MessageColumns.of(batch.column("messages"))
    for i, r in enumerate(REQUESTS[start:]):
        expected = request_blocks(r["system_text"], r["messages"], r["tools_json"], r["provider"])
        assert columns.blocks(i, r["system_text"], r["tools_json"], r["provider"]) == expected
        first = (r["messages"] or [])[:2]
        stub = request_blocks(r["system_text"], [*first, {"role": "assistant"}] if first else [], r["tools_json"],
                              r["provider"])
        assert columns.blocks(i, r["system_text"], r["tools_json"], r["provider"], limit=2,
                              trailing_assistant=True) == stub
    # The tool call and the non-text parts are part of the tokenized text; roles stay per message.
    blocks = columns.blocks(0, REQUESTS[start]["system_text"], None, None) if start == 0 else []
    if blocks:
        assert [b.segment for b in blocks] == ["system", "history", "history", "history", "history", "new_turn"]
        assert blocks[2].text == 'lookup {"q": 1}' and blocks[4].text == 'It is 42.\n[{"type": "thinking"}]'


def test_memoized_and_naive_counts_agree_and_the_memo_counts_its_work() -> None:
    columns = MessageColumns.of(_batch().column("messages"))
    memo = TokenMemo()
    for _ in range(2):
        for i, r in enumerate(REQUESTS):
            blocks = columns.blocks(i, r["system_text"], r["tools_json"], r["provider"])
            assert count_blocks(memo, "o200k_base", blocks) == count_blocks_naive("o200k_base", blocks)
    first_pass = memo.misses
    assert memo.hits >= first_pass > 0  # the second pass found every block
    tiny = TokenMemo(max_tokens=5)  # over budget: the oldest entries go, counts stay right
    for i, r in enumerate(REQUESTS):
        blocks = columns.blocks(i, r["system_text"], r["tools_json"], r["provider"])
        assert count_blocks(tiny, "o200k_base", blocks) == count_blocks_naive("o200k_base", blocks)
    assert tiny.stats()["distinct_held"] <= 2


def test_simulation_with_replaced_rules_equals_rows_carrying_them() -> None:
    documented = CacheRules("doc", "auto_prefix", min_tokens=1024, step_tokens=128, ttl_minutes=5)
    candidates = [dataclasses.replace(documented, min_tokens=256, ttl_minutes=60),
                  CacheRules("bp", "breakpoints", min_tokens=128, ttl_minutes=5, refresh_on_hit=False)]
    rows = [SimRow(f"r{i}", i * 7 * 60_000, documented, 1.0, 2048, [1, 2, 3, 4 + i % 2] * 8, [512, 1024, 2048],
                   [11, 12, 13 + i % 3], [(1, False), (2, i % 2 == 0)]) for i in range(30)]
    for rules in candidates:
        got = list(simulate_partition(rows, 64, rules))
        want = list(simulate_partition([dataclasses.replace(r, rules=rules) for r in rows], 64))
        assert got == want and any(g.read for g in got)
