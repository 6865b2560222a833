"""Bedrock Agents `InvokeAgent` calls in HTTP captures (`POST
/agents/{agentId}/agentAliases/{aliasId}/sessions/{sessionId}/text` on bedrock-agent-runtime).

The response is an AWS event stream: `chunk` events carry the answer as plain text, `trace`
events (with `enableTrace`) carry the agent's steps. Every model invocation of the agent
(pre-processing, orchestration steps, post-processing, routing) shows up as a
`modelInvocationInput` (`foundationModel`, prompt `text`) and a `modelInvocationOutput` whose
`metadata.usage` has `inputTokens` / `outputTokens` (Bedrock semantics: cache tokens apart).

One InvokeAgent call becomes one row: the user's `inputText`, the streamed answer, the model
named by the invocations, and the usage SUMMED over the agent's model invocations (what the call
cost); the per-invocation usage stays in `usage_raw`. Without traces the usage stays missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import orjson

from pipeline.ingest.bodies import message
from pipeline.ingest.rows import Row, as_int, as_str, bounded, dumps, make_row, usage_buckets

_PATH = re.compile(r"/agents/([^/]+)/agentAliases/([^/]+)/sessions/([^/]+)/text$")


def _steps(events: list[Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(trace kind, step) for every step object inside the stream's trace events."""
    for ev in events:
        part = ev.get("trace") if isinstance(ev, dict) else None
        inner = part.get("trace") if isinstance(part, dict) else None
        if not isinstance(inner, dict):
            continue
        for kind, step in inner.items():
            if isinstance(step, dict):
                yield kind, step


def agent_call_row(path: str, request_body: Any, events: list[Any], status: int | None,
                   headers: Mapping[str, str], label: str, *, ts: datetime | None = None, total_ms: float | None = None) -> Row:
    req = request_body if isinstance(request_body, dict) else None
    if req is None and isinstance(request_body, str | bytes):
        try:
            req = orjson.loads(request_body)
        except orjson.JSONDecodeError:
            req = None
    req = req if isinstance(req, dict) else {}
    m = _PATH.search(path)
    agent_id, alias_id, session_id = m.groups() if m else (None, None, None)
    models: list[str] = []
    invocations: list[dict[str, Any]] = []
    for kind, step in _steps(events):
        inp = step.get("modelInvocationInput")
        if isinstance(inp, dict) and inp.get("foundationModel"):
            models.append(as_str(inp["foundationModel"]))
        out = step.get("modelInvocationOutput")
        usage = out.get("metadata", {}).get("usage") if isinstance(out, dict) and isinstance(out.get("metadata"), dict) else None
        if isinstance(usage, dict):
            invocations.append({"trace": kind, "inputTokens": as_int(usage.get("inputTokens")),
                                "outputTokens": as_int(usage.get("outputTokens"))})
    text = "".join(as_str(e["chunk"].get("text")) or "" for e in events
                   if isinstance(e, dict) and isinstance(e.get("chunk"), dict))
    errors = [e["error"] for e in events if isinstance(e, dict) and isinstance(e.get("error"), dict)]
    failed = bool(errors) or (status is not None and status >= 400)
    usage = usage_buckets(
        uncached=sum(i["inputTokens"] or 0 for i in invocations) if invocations else None,
        output=sum(i["outputTokens"] or 0 for i in invocations) if invocations else None,
        raw={"model_invocations": invocations} if invocations else None,
    )
    input_text = as_str(req.get("inputText"))
    return make_row(
        {**usage, "messages": [message("user", input_text)] if input_text else [],
         "response_text": text or None, "n_choices": 1 if text else None},
        record=[label, path, request_body if isinstance(request_body, str) else dumps(req), status],
        request_id=headers.get("x-amzn-requestid") or headers.get("x-amzn-bedrock-agent-session-id"),
        ts=ts,
        provider="bedrock",
        endpoint="invoke_agent",
        model=models[-1] if models else None,
        session_id=as_str(req.get("sessionId")) or session_id,
        status_code=status,
        is_stream=True,
        finish_reason="error" if failed else ("stop" if text else None),
        error_type=(as_str(errors[0].get("type")) or "error") if errors else (f"http_{status}" if failed else None),
        error_message=bounded(as_str(errors[0].get("message"))) if errors else None,
        latency_ms=total_ms if total_ms is not None and total_ms >= 0 else None,
        metadata_json=dumps({"agent_id": agent_id, "agent_alias_id": alias_id, "model_invocations": len(invocations),
                             "foundation_models": sorted(set(models)) or None}),
    )
