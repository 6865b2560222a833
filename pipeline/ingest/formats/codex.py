"""OpenAI Codex CLI rollouts (`~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl`, formats.md §j2).

Every line is `{timestamp, type, payload}`. The model-visible conversation is the `response_item`
lines (Responses API items); each model call ends with an `event_msg` `token_count` whose
`info.total_token_usage` is CUMULATIVE for the session. One row per call = per token_count whose
cumulative total grew; its usage is the difference from the previous total (repeated
token_counts with an unchanged total are the same call, `info: null` ones carry nothing).
The prompt of a call is every item logged before the call's first output item; its response is the
model-generated items since the previous call.

Without any token_count (older CLIs), a call ends where its outputs are followed by the next input
item (a tool output or a user turn): one row per call, usage missing, time of its last output.

Traps: a file may hold several sessions (each `session_meta` resets the totals and history); some
timestamps are not ISO ("[trimmed for fixture]") and then the row has no `ts`; `compacted` lines
replace the history with a summary.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pipeline.ingest.bodies.responses import add_input_item, input_messages, responses_response
from pipeline.ingest.formats import Context, record_format
from pipeline.ingest.rows import Row, as_int, as_str, dumps, get_path, make_row, parse_ts, usage_inclusive

NAME = "codex_rollout"
_LINE_TYPES = ("session_meta", "turn_context", "response_item", "event_msg", "compacted", "world_state",
               "inter_agent_communication", "inter_agent_communication_metadata")
# Items the model produced (its response); everything else (user/developer messages, tool outputs) is input.
_OUTPUT_ITEMS = ("reasoning", "function_call", "custom_tool_call", "local_shell_call", "web_search_call",
                 "image_generation_call", "tool_search_call", "agent_message")
_COUNTS = ("input_tokens", "cached_input_tokens", "cache_write_input_tokens", "output_tokens", "reasoning_output_tokens")


def _is_rollout(rec: Mapping[str, Any]) -> bool:
    return "payload" in rec and "timestamp" in rec and rec.get("type") in _LINE_TYPES and len(rec) <= 4


def _is_output(item: Mapping[str, Any]) -> bool:
    t = item.get("type")
    return (t == "message" and item.get("role") == "assistant") or t in _OUTPUT_ITEMS


@record_format(
    NAME,
    "Codex CLI rollout line: `{timestamp, type, payload}` (session_meta|turn_context|response_item|event_msg|…); "
    "one row per model call, usage differenced from the cumulative token_count",
    _is_rollout,
    order=15,
    finish_file=lambda ctx: _finish_file(ctx),
)
def parse_line(rec: Mapping[str, Any], ctx: Context) -> list[Row]:
    st = ctx.file_state(NAME)
    payload = rec.get("payload") if isinstance(rec.get("payload"), dict) else {}
    t = rec.get("type")
    out: list[Row] = []
    if t == "session_meta" or "session" not in st:
        out += _flush_unmetered(ctx, st)
        st["session"] = {
            "id": as_str(payload.get("id") or payload.get("session_id")) if t == "session_meta" else None,
            "instructions": as_str(get_path(payload, "base_instructions", "text") or payload.get("instructions")),
            "meta": {k: payload.get(k) for k in ("cli_version", "originator", "cwd", "source", "model_provider") if payload.get(k)},
            "model": as_str(payload.get("model")) if t == "session_meta" else None,
            # Rollouts without token_count lines (older CLIs, some desktop builds) still mark each
            # call's end: its outputs are followed by the next input item (tool output, user turn).
            "metered": False,
            "last_output_ts": None,
            # The conversation so far, normalized once: each call's prompt is a prefix of it, and
            # the message objects are shared between calls (linear memory per session).
            "system": [],
            "msgs": [],
            "prompt_len": None,  # (messages, system texts) before the current call's first output
            "outputs": [],  # items the model produced since the previous call
            "totals": None,
            "calls": 0,
            "last_id": None,
            "turn": {},
        }
    s = st["session"]
    if t == "turn_context":
        s["turn"] = {k: payload.get(k) for k in ("model", "turn_id", "effort", "cwd") if payload.get(k) is not None}
        if get_path(payload, "collaboration_mode", "settings", "model") and "model" not in s["turn"]:
            s["turn"]["model"] = payload["collaboration_mode"]["settings"]["model"]
    elif t == "response_item" and payload.get("type") != "ghost_snapshot":
        item = dict(payload)
        if not _is_output(item) and s["outputs"] and not s["metered"]:
            out.append(_row(ctx, s, {"timestamp": s["last_output_ts"]}, {"usage_missing": True}))
        if _is_output(item):
            s["last_output_ts"] = rec.get("timestamp")
            if s["prompt_len"] is None:
                s["prompt_len"] = (len(s["msgs"]), len(s["system"]))
            if item.get("type") == "agent_message":
                item = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": item.get("message", "")}]}
            s["outputs"].append(item)
        add_input_item(s["system"], s["msgs"], item)
    elif t == "compacted":
        history = payload.get("replacement_history")
        summary = as_str(payload.get("message"))
        items = list(history) if isinstance(history, list) else (
            [{"type": "message", "role": "user", "content": summary}] if summary else []
        )
        s["system"], s["msgs"] = input_messages(items)
        s["prompt_len"], s["outputs"] = None, []
    elif t == "event_msg" and payload.get("type") == "token_count":
        out += _on_token_count(ctx, s, payload, rec)
    return out


def _delta(totals: Mapping[str, Any], prev: Mapping[str, Any] | None) -> dict[str, int]:
    return {k: (as_int(totals.get(k)) or 0) - (as_int((prev or {}).get(k)) or 0) for k in _COUNTS}


def _on_token_count(ctx: Context, s: dict, payload: Mapping[str, Any], rec: Mapping[str, Any]) -> list[Row]:
    info = payload.get("info")
    if not isinstance(info, dict):
        return []  # `info: null`: rate limits only, no usage
    s["metered"] = True
    totals = info.get("total_token_usage")
    if isinstance(totals, dict):
        delta = _delta(totals, s["totals"])
        if s["totals"] is not None and any(v < 0 for v in delta.values()):
            delta = _delta(totals, None)  # the counter restarted (resumed session): count afresh
        s["totals"] = dict(totals)
    elif isinstance(info.get("last_token_usage"), dict):
        delta = _delta(info["last_token_usage"], None)
    else:
        return []
    if not any(delta.values()):
        return []  # the same call reported again
    usage = usage_inclusive(
        total_input=delta["input_tokens"],
        cache_read=delta["cached_input_tokens"],
        cache_write=delta["cache_write_input_tokens"] if "cache_write_input_tokens" in (totals or {}) else None,
        output=delta["output_tokens"],
        reasoning=delta["reasoning_output_tokens"],
        raw={"delta": delta, "total_token_usage": totals, "last_token_usage": info.get("last_token_usage"),
             "model_context_window": info.get("model_context_window")},
    )
    return [_row(ctx, s, rec, usage)]


def _row(ctx: Context, s: dict, rec: Mapping[str, Any] | None, usage: Row) -> Row:
    n_msgs, n_system = s["prompt_len"] or (len(s["msgs"]), len(s["system"]))
    messages, system = s["msgs"][:n_msgs], s["system"][:n_system]
    fields = responses_response({"output": s["outputs"], "status": "completed"})
    s["prompt_len"], s["outputs"] = None, []
    s["calls"] += 1
    sid = s["id"]
    request_id = f"{sid}#{s['calls']}" if sid else None
    instructions = [s["instructions"]] if s["instructions"] else []
    meta = {**s["meta"], **{k: v for k, v in s["turn"].items() if k != "model"}}
    row = make_row(
        fields,
        record=[ctx.source_file, ctx.source_line, s["calls"]],
        request_id=request_id,
        ts=parse_ts(rec.get("timestamp")) if rec else None,
        provider=as_str(s["meta"].get("model_provider")) or "openai",
        endpoint="responses",
        model=as_str(s["turn"].get("model")) or s.get("model"),
        session_id=sid,
        parent_id=s["last_id"],
        system_text="\n".join(instructions + system) or None,
        messages=messages,
        metadata_json=dumps(meta),
        source_format=NAME,
        source_file=ctx.source_file,
        source_line=ctx.source_line,
        **usage,
    )
    # make_row fills `status_code` from the synthetic body; a rollout logs no HTTP status.
    row["status_code"] = None
    s["last_id"] = row["request_id"]
    return row


def _flush_unmetered(ctx: Context, st: dict) -> list[Row]:
    """Outputs logged after the last token_count of a session: a call whose usage never came."""
    s = st.get("session")
    if not s or not s["outputs"]:
        return []
    return [_row(ctx, s, {"timestamp": s.get("last_output_ts")}, {"usage_missing": True})]


def _finish_file(ctx: Context) -> Iterator[Row]:
    st = ctx.local.get(NAME, {}).get(ctx.source_file)
    if st:
        try:
            yield from _flush_unmetered(ctx, st)
        except (TypeError, ValueError, KeyError, AttributeError, IndexError) as e:
            ctx.skip_item("malformed_record", f"Codex outputs after the last token_count: {type(e).__name__}: {e}")
