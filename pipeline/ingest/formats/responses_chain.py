"""OpenAI Responses API chains: a turn sent with `previous_response_id` logs only its new input;
the model saw (and was billed for) the whole conversation, which the server kept. So every
Responses row is indexed by its response id, and a row with a parent is held until the end of the
run, when its full prompt is rebuilt by walking the chain: each ancestor's input followed by its
reply, oldest first, then the row's own input (formats.md §b).

When an ancestor is not in the logs, the row keeps what is known and says so in `metadata_json`
(`context_incomplete`, `missing_response_id`): cacheable-share and dataset stages must not treat
it as a full prompt. `instructions` are not inherited along a chain, so `system_text` stays the
row's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from pipeline.ingest.bodies import message
from pipeline.ingest.formats import Context, row_stage
from pipeline.ingest.rows import Row, dumps

NAME = "responses_chain"
# Formats whose Responses rows already hold the full conversation (their parent_id is their own).
_FULL_CONTEXT_FORMATS = frozenset({"codex_rollout"})
MAX_DEPTH = 10_000


def _state(ctx: Context) -> dict[str, dict]:
    st = ctx.format_state(NAME)
    st.setdefault("turns", {})
    st.setdefault("held", {})
    return st


def _finish(ctx: Context) -> Iterator[Row]:
    st = _state(ctx)
    turns: dict[str, Any] = st["turns"]
    for key in sorted(st["held"]):
        row = st["held"].pop(key)
        ancestors: list[dict] = []
        missing = None
        cur = row.get("parent_id")
        seen: set[str] = set()
        while cur and cur not in seen and len(seen) < MAX_DEPTH:
            seen.add(cur)
            turn = turns.get(cur)
            if turn is None:
                missing = cur
                break
            ancestors.append(turn)
            cur = turn["parent"]
        context: list[dict] = []
        for turn in reversed(ancestors):
            context += orjson.loads(turn["messages"])
        row["messages"] = context + list(row.get("messages") or [])
        meta = orjson.loads(row["metadata_json"]) if row.get("metadata_json") else {}
        if not isinstance(meta, dict):
            meta = {"metadata": meta}
        meta["context"] = "rebuilt_from_previous_response_id"
        meta["chain_depth"] = len(ancestors)
        if missing:
            meta["context_incomplete"] = True
            meta["missing_response_id"] = missing
        row["metadata_json"] = dumps(meta)
        yield row


@row_stage(NAME, finish=_finish)
def hold_chained(row: Row, ctx: Context) -> Row | None:
    """Index every Responses turn; hold back those that continue an earlier one."""
    if row.get("endpoint") != "responses" or row.get("source_format") in _FULL_CONTEXT_FORMATS:
        return row
    st = _state(ctx)
    if row.get("response_id"):
        reply = message("assistant", row.get("response_text"), tool_calls=row.get("response_tool_calls"))
        # Stored as JSON bytes: compact, and safe to ship between worker processes.
        st["turns"][row["response_id"]] = {
            "parent": row.get("parent_id"),
            "messages": orjson.dumps([*(row.get("messages") or []), reply]),
        }
    if row.get("parent_id"):
        st["held"][f"{row.get('source_file')}\x00{row.get('source_line') or 0:012d}\x00{row.get('request_id')}"] = row
        return None
    return row
