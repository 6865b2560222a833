"""Claude Code session transcripts (`~/.claude/projects/<project>/<sessionId>.jsonl`, formats.md §j1).

Traps:
* One API response is written as SEVERAL lines (one per content block) repeating the same
  `message.id` + `requestId` and usage; summing lines double-counts. Lines are grouped on that
  pair: one row per API call, content blocks joined, usage from the line with the final (largest)
  `output_tokens` (earlier lines of a group may carry a partial count).
* The request is not logged: the prompt of a call is rebuilt by walking `parentUuid` from the
  call's first line back to the root (user turns, tool results, earlier assistant messages).
  The system prompt and tool definitions are never logged.
* Sub-agent (Task) traffic is interleaved as `isSidechain: true` lines with their own root; those
  calls are kept, flagged in `metadata_json`.
* `summary`, `queue-operation`, `file-history-snapshot` and system lines are not API calls
  (skipped); user lines are context for later calls (ingested, no row of their own);
  `<synthetic>` assistant lines are written locally by the CLI, not returned by the API (skipped).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pipeline.ingest.bodies.anthropic import anthropic_message, anthropic_response
from pipeline.ingest.formats import Context, record_format
from pipeline.ingest.rows import RecordError, Row, Skip, as_int, as_str, dumps, make_row, parse_ts

NAME = "claude_code"
_NOT_CALLS = ("summary", "queue-operation", "file-history-snapshot", "system", "progress", "attachment")


def _is_claude_code(rec: Mapping[str, Any]) -> bool:
    t = rec.get("type")
    if not isinstance(t, str):
        return False
    if "sessionId" in rec and "uuid" in rec and "parentUuid" in rec:
        return True
    return (t == "summary" and "leafUuid" in rec) or (t == "queue-operation" and "sessionId" in rec) or (
        t == "file-history-snapshot" and "messageId" in rec
    )


@record_format(
    NAME,
    "Claude Code transcript line: `uuid` + `parentUuid` + `sessionId` + `type` (user|assistant|summary|…); "
    "one row per API message (lines grouped on message.id + requestId)",
    _is_claude_code,
    order=15,
    finish_file=lambda ctx: _finish_file(ctx),
)
def parse_line(rec: Mapping[str, Any], ctx: Context) -> list[Row]:
    t = rec.get("type")
    msg = rec.get("message")
    if t in _NOT_CALLS or t not in ("user", "assistant"):
        raise Skip("not_an_api_call", f"Claude Code `{t}` line")
    if not isinstance(msg, dict):
        raise RecordError("missing_field", f"`{t}` line has no `message` object")
    st = ctx.file_state(NAME)
    lines: dict[str, dict] = st.setdefault("lines", {})
    groups: dict[tuple, dict] = st.setdefault("groups", {})
    uuid = as_str(rec.get("uuid")) or f"line-{ctx.source_line}"
    entry: dict[str, Any] = {
        "parent": as_str(rec.get("parentUuid")),
        "role": as_str(msg.get("role")) or t,
        "content": msg.get("content"),
        "line": ctx.source_line,
    }
    if t == "assistant":
        model = as_str(msg.get("model"))
        if model == "<synthetic>":
            raise Skip("synthetic_message", "assistant line written by the CLI itself (model `<synthetic>`), not an API response")
        key = (as_str(msg.get("id")) or uuid, as_str(rec.get("requestId")))
        entry["group"] = key
        group = groups.get(key)
        if group is None:
            group = groups[key] = {"first": uuid, "line": ctx.source_line, "blocks": [], "usage": None, "rec": rec, "stop": None}
        for block in msg.get("content") or []:
            if block not in group["blocks"]:  # replayed identical blocks are one block
                group["blocks"].append(block)
        usage = msg.get("usage")
        if isinstance(usage, dict) and (
            group["usage"] is None or (as_int(usage.get("output_tokens")) or 0) >= (as_int(group["usage"].get("output_tokens")) or 0)
        ):
            group["usage"] = usage
        group["stop"] = msg.get("stop_reason") or group["stop"]
        group["model"] = model or group.get("model")
    lines[uuid] = entry
    return []


def _context(start: str | None, lines: dict[str, dict], groups: dict[tuple, dict], cache: dict) -> tuple[list[dict], tuple | None]:
    """Messages from the root down to line `start` (API order), and the previous call's group key.

    Each line (or assistant group) is normalized once and its message objects are shared by every
    later call's prompt, and the prompt of each call is remembered, so the next call walks back only
    to the previous call's start: a session costs linear work, not quadratic.
    """
    prefixes, normalized = cache.setdefault("prefixes", {}), cache.setdefault("normalized", {})
    units: list[Any] = []
    seen: set[str] = set()
    parent_call = None
    uuid = start
    base: tuple[list[dict], tuple | None, Any] = ([], None, None)
    while uuid and uuid in lines and uuid not in seen:
        if uuid in prefixes:
            base = prefixes[uuid]
            break
        seen.add(uuid)
        entry = lines[uuid]
        unit = entry.get("group") or uuid
        if not units or units[-1] != unit:
            units.append(unit)
        if parent_call is None and entry.get("group"):
            parent_call = entry["group"]
        uuid = entry["parent"]
    messages = list(base[0])
    for unit in reversed(units):
        if unit == base[2]:
            continue  # more lines of the assistant message the remembered prompt already ends with
        if unit not in normalized:
            if isinstance(unit, tuple):  # an assistant API message: all its lines' blocks
                normalized[unit] = anthropic_message("assistant", groups[unit]["blocks"], 0, [])
            else:
                entry = lines[unit]
                normalized[unit] = anthropic_message(entry["role"], entry["content"], 0, [])
        messages += normalized[unit]
    if parent_call is None:
        parent_call = base[1]
    if start and start in lines:
        prefixes[start] = (messages, parent_call, lines[start].get("group") or start)
    return messages, parent_call


def _finish_file(ctx: Context) -> Iterator[Row]:
    st = ctx.local.get(NAME, {}).get(ctx.source_file)
    if not st:
        return
    lines, groups = st.get("lines", {}), st.get("groups", {})
    request_ids = {key: key[1] or key[0] for key in groups}
    cache: dict = {}
    for key, group in groups.items():
        try:
            yield _row(ctx, key, group, lines, groups, request_ids, cache)
        except (RecordError, TypeError, ValueError, KeyError, AttributeError) as e:
            # The lines were valid on their own; the assembled call is what failed.
            detail = e.detail if isinstance(e, RecordError) else f"{type(e).__name__}: {e}"
            ctx.skip_item("malformed_record", f"Claude Code message {key[0]} (line {group['line']}): {detail}")


def _row(ctx: Context, key: tuple, group: dict, lines: dict[str, dict], groups: dict, request_ids: dict, cache: dict) -> Row:
    rec = group["rec"]
    first = lines.get(group["first"], {})
    messages, parent_call = _context(first.get("parent"), lines, groups, cache)
    fields: Row = {"messages": messages}
    response = {
        "id": key[0],
        "type": "message",
        "role": "assistant",
        "model": group.get("model"),
        "content": group["blocks"],
        "stop_reason": group["stop"],
        "usage": group["usage"],
    }
    fields.update(anthropic_response(response))
    meta = {
        "is_sidechain": bool(rec.get("isSidechain")) or None,
        "agent_id": rec.get("agentId"),
        "cwd": rec.get("cwd"),
        "git_branch": rec.get("gitBranch") or None,
        "cli_version": rec.get("version"),
        "entrypoint": rec.get("entrypoint"),
        "user_type": rec.get("userType"),
        "speed": (group["usage"] or {}).get("speed"),
        "context": "rebuilt_from_parent_uuid_chain (system prompt and tools are not logged)",
    }
    return make_row(
        fields,
        record=[ctx.source_file, key],
        request_id=key[1] or key[0],
        ts=parse_ts(rec.get("timestamp")),
        provider="anthropic",
        endpoint="messages",
        model=group.get("model"),
        session_id=as_str(rec.get("sessionId")),
        parent_id=request_ids.get(parent_call) if parent_call else None,
        metadata_json=dumps({k: v for k, v in meta.items() if v is not None}),
        source_format=NAME,
        source_file=ctx.source_file,
        source_line=group["line"],
    )
