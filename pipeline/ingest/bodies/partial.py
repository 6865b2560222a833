"""One rule for records that carry a call in pieces (gateway and observability exports).

A gateway row often splits one call across several carriers: LiteLLM keeps the conversation in
its top-level `messages` column while `proxy_server_request` holds only `model` and `tools`; a
Helicone row may have a request body in one API shape and a response in another; a trace may
lose the response. A valid call must never be quarantined for an optional part it can do without,
so every gateway/observability adapter goes through `recover_bodies`:

  * the request is MERGED from every carrier the record offers, in the adapter's order of trust:
    per key, the first non-empty value wins (conversation from one carrier, tools and parameters
    from another);
  * the pair is parsed as one body; when the two sides are in different shapes, or one side is
    unreadable, each side is parsed alone and what parses is kept;
  * what was partial (merged carriers, a side missing or unreadable) is returned as notes the
    adapter puts into `metadata_json` under `partial` (`with_partial`);
  * the record is rejected only when neither side parses AND the adapter recovered no usage
    elsewhere: nothing of the call is left to keep.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.ingest.bodies import detect_body, parse_bodies
from pipeline.ingest.rows import RecordError, Row

# Keys that carry the conversation in some provider request shape.
CONVERSATION_KEYS = ("messages", "input", "contents", "prompt", "system", "instructions")


@dataclass
class Recovered:
    fields: Row = field(default_factory=dict)
    partial: dict[str, Any] = field(default_factory=dict)


def _as_body(value: Any) -> Mapping[str, Any] | None:
    if isinstance(value, dict):
        return value or None
    if isinstance(value, list) and value:  # a bare message list (e.g. LiteLLM's `messages` column)
        return {"messages": value}
    return None


def merge_request(carriers: Mapping[str, Any]) -> tuple[Mapping[str, Any] | None, list[str]]:
    """One request body from the carriers (name -> value) and the names that contributed to it."""
    merged: dict[str, Any] = {}
    used: list[str] = []
    conversation_from = None
    for name, value in carriers.items():
        body = _as_body(value)
        if body is None:
            continue
        # The conversation comes whole from ONE carrier (two carriers may spell it in different
        # API shapes); tools, parameters and the model may come from any.
        has_conversation = any(body.get(k) not in (None, "", [], {}) for k in CONVERSATION_KEYS)
        if has_conversation and conversation_from is None:
            conversation_from = name
        took = False
        for k, v in body.items():
            if v in (None, "", [], {}) or merged.get(k) not in (None, "", [], {}):
                continue
            if k in CONVERSATION_KEYS and name != conversation_from:
                continue
            merged[k] = v
            took = True
        if took:
            used.append(name)
    return (merged or None), used


def _keys(body: Mapping[str, Any] | None) -> str:
    return ", ".join(sorted(body)[:12]) if body else ""


def recover_bodies(
    requests: Mapping[str, Any], responses: Mapping[str, Any], *, hint: str | None = None,
    usage_recovered: bool = False,
) -> Recovered:
    """Parse what a record offers (see module doc). `requests` / `responses`: carrier name -> value,
    in order of trust. Raises RecordError only when nothing of the call can be kept."""
    req, used = merge_request(requests)
    resp_name, resp = next(((n, b) for n, v in responses.items() if (b := _as_body(v)) is not None), (None, None))
    out = Recovered()
    if len(used) > 1:
        out.partial["request_merged_from"] = used
    if req is None and resp is None:
        if requests or responses:
            out.partial["bodies"] = "missing"
        return out
    if req is None:
        out.partial["request"] = "missing"
    elif not any(req.get(k) for k in CONVERSATION_KEYS):
        out.partial["conversation"] = "missing"
    if resp is None:
        out.partial["response"] = "missing"
    try:
        out.fields = parse_bodies(req, resp, hint=hint)
        return out
    except RecordError as whole:
        first_error = whole
    asked: Row = {}
    answered: Row = {}
    if req is not None:
        try:
            asked = parse_bodies(req, None, hint=hint) if (hint or detect_body(req, None)) else {}
        except RecordError:
            asked = {}
        if not asked:
            out.partial["request_unrecognized"] = _keys(req)
    if resp is not None:
        try:
            answered = parse_bodies(None, resp)
        except RecordError:
            answered = {}
        if not answered:
            out.partial["response_unrecognized"] = _keys(resp)
    if not asked and not answered and not usage_recovered:
        raise first_error
    # The model the client asked for comes from the request; the response names the snapshot.
    out.fields = {**asked, **answered}
    if asked.get("model"):
        out.fields["model"] = asked["model"]
    if resp_name and answered and len(responses) > 1:
        out.partial["response_from"] = resp_name
    return out


def missing_parts(fields: Row) -> dict[str, str]:
    """Notes for adapters that parse their own columns (traces, runs): which part of the call the
    record did not carry. A failed call has no response by nature."""
    notes = {}
    if not fields.get("messages") and not fields.get("system_text"):
        notes["conversation"] = "missing"
    if (fields.get("response_text") is None and not fields.get("response_tool_calls")
            and fields.get("finish_reason") != "error"):
        notes["response"] = "missing"
    return notes


def with_partial(meta: Mapping[str, Any] | None, partial: Mapping[str, Any]) -> dict[str, Any]:
    """The adapter's metadata with the partial notes under `partial` (unchanged when complete)."""
    out = dict(meta or {})
    if partial:
        out["partial"] = dict(partial)
    return out
