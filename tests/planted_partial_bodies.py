"""Planted gateway/observability exports whose records carry a call in pieces (issue #13, part 2).

Stdlib only, no project imports. `write_world(folder)` writes one file per adapter and returns the
truth: which records must be kept (and with what), which must be rejected.

LiteLLM SpendLogs (the issue's export): of `n` rows, `partial` keep the conversation in the top-level
`messages` column while `proxy_server_request` holds only `model` and `tools`, and `response` is
empty; usage is in `prompt_tokens` / `completion_tokens` (+ `metadata.usage_object`). Three more
rows have tools and usage but no conversation anywhere; two have nothing recoverable (no
conversation, no usage) and are the only ones that may be rejected.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any

TOOLS = [{"type": "function", "function": {"name": "lookup_order", "description": "Find an order",
                                           "parameters": {"type": "object", "properties": {"id": {"type": "string"}}}}}]


def _spend_row(rng: random.Random, i: int, kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
    prompt, completion, cached = rng.randint(800, 3000), rng.randint(10, 400), 0
    if rng.random() < 0.5:
        cached = prompt // 2
    msgs = [{"role": "system", "content": "You are the order assistant."},
            {"role": "user", "content": f"Where is order {1000 + i}?"}]
    reply = {"id": f"chatcmpl-{i}", "object": "chat.completion", "model": "gpt-4.1-mini-2025-04-14",
             "choices": [{"index": 0, "message": {"role": "assistant", "content": f"Order {1000 + i} shipped."},
                          "finish_reason": "stop"}],
             "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                       "prompt_tokens_details": {"cached_tokens": cached}}}
    row: dict[str, Any] = {
        "request_id": f"req-{i:05d}", "call_type": "acompletion", "api_key": "88e1f9", "spend": 0.001,
        "startTime": f"2026-07-14T09:{i // 60 % 60:02d}:{i % 60:02d}.000Z",
        "endTime": f"2026-07-14T09:{i // 60 % 60:02d}:{i % 60:02d}.900Z",
        "model": "gpt-4.1-mini", "model_group": "mini", "custom_llm_provider": "openai", "status": "success",
        "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
        "metadata": {"usage_object": {"prompt_tokens": prompt, "completion_tokens": completion,
                                      "prompt_tokens_details": {"cached_tokens": cached}}},
        "messages": {}, "response": {}, "proxy_server_request": {},
    }
    truth = {"kind": kind, "keep": True, "prompt": prompt, "completion": completion, "cached": cached,
             "user": msgs[1]["content"], "tools": False, "response": None}
    if kind == "full":
        row["proxy_server_request"] = {"model": "gpt-4.1-mini", "messages": msgs, "tools": TOOLS}
        row["response"] = reply
        truth.update(tools=True, response=reply["choices"][0]["message"]["content"])
    elif kind == "model_and_tools_only":  # the 94 rows
        row["proxy_server_request"] = {"model": "gpt-4.1-mini", "tools": TOOLS}
        row["messages"] = msgs
        truth.update(tools=True)
    elif kind == "no_conversation":
        row["proxy_server_request"] = {"model": "gpt-4.1-mini", "tools": TOOLS}
        truth.update(user=None)
    elif kind == "nothing":
        row["proxy_server_request"] = {"model": "gpt-4.1-mini", "tools": TOOLS}
        for k in ("prompt_tokens", "completion_tokens", "total_tokens", "metadata"):
            row.pop(k)
        truth.update(keep=False)
    return row, truth


def litellm_spend_logs(n: int = 800, partial: int = 94, seed: int = 13) -> tuple[list[dict], dict[str, dict]]:
    rng = random.Random(seed)
    kinds = ["full"] * (n - partial - 5) + ["model_and_tools_only"] * partial + ["no_conversation"] * 3 + ["nothing"] * 2
    rng.shuffle(kinds)
    rows, truth = [], {}
    for i, kind in enumerate(kinds):
        row, t = _spend_row(rng, i, kind)
        rows.append(row)
        truth[row["request_id"]] = t
    return rows, truth


def other_adapters() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(file name, record, truth) for the other gateway/observability adapters."""
    reply = {"id": "chatcmpl-h1", "object": "chat.completion", "model": "gpt-4.1-mini",
             "choices": [{"index": 0, "message": {"role": "assistant", "content": "It shipped today."},
                          "finish_reason": "stop"}]}
    return [
        # LiteLLM StandardLoggingPayload: conversation in `messages`, tools only in `model_parameters`.
        ("litellm_payload.jsonl", {
            "id": "pl-1", "trace_id": "t-1", "call_type": "acompletion", "response_cost": 0.001,
            "model_map_information": {}, "model": "gpt-4.1-mini", "custom_llm_provider": "openai",
            "startTime": 1784020323.0, "endTime": 1784020324.0, "status": "success",
            "prompt_tokens": 1200, "completion_tokens": 30, "total_tokens": 1230,
            "messages": [{"role": "user", "content": "Where is order 77?"}],
            "model_parameters": {"tools": TOOLS, "temperature": 0.1}, "response": {}, "hidden_params": {},
        }, {"id": "pl-1", "user": "Where is order 77?", "tools": True, "response": None, "prompt": 1200}),
        # Helicone: a request body with only model + tools, a complete response body.
        ("helicone.jsonl", {
            "request_id": "h-partial-1", "request_created_at": "2026-07-14 09:12:03.101",
            "response_created_at": "2026-07-14 09:12:04.065", "response_status": 200, "provider": "OPENAI",
            "model": "gpt-4.1-mini", "request_path": "/v1/chat/completions", "prompt_tokens": 900,
            "completion_tokens": 18, "request_body": {"model": "gpt-4.1-mini", "tools": TOOLS},
            "response_body": reply,
        }, {"id": "h-partial-1", "user": None, "tools": False, "response": "It shipped today.", "prompt": 900}),
        # Helicone: a complete request, an unreadable response body.
        ("helicone.jsonl", {
            "request_id": "h-partial-2", "request_created_at": "2026-07-14 09:13:03.101", "response_status": 200,
            "provider": "OPENAI", "model": "gpt-4.1-mini", "request_path": "/v1/chat/completions",
            "prompt_tokens": 950, "completion_tokens": 20,
            "request_body": {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "Refund?"}], "tools": TOOLS},
            "response_body": {"streamed_data": "filtered"},
        }, {"id": "h-partial-2", "user": "Refund?", "tools": True, "response": None, "prompt": 950}),
        # Langfuse: a generation whose input was not captured.
        ("langfuse.jsonl", {
            "id": "obs-partial", "trace_id": "tr-p", "type": "GENERATION", "name": "answer",
            "start_time": "2026-07-14 09:12:03.101000", "end_time": "2026-07-14 09:12:04.000000",
            "provided_model_name": "gpt-4.1-mini", "input": None, "output": "Hi there",
            "usage_details": {"input": 700, "output": 5, "total": 705},
        }, {"id": "obs-partial", "user": None, "tools": False, "response": "Hi there", "prompt": 700}),
        # LangSmith: an llm run whose outputs were not captured (usage in the run's columns).
        ("langsmith.jsonl", {
            "id": "ls-partial", "trace_id": "ls-0", "dotted_order": "20260714T091203101000Zls", "name": "ChatOpenAI",
            "run_type": "llm", "start_time": "2026-07-14T09:12:03.150Z", "end_time": "2026-07-14T09:12:04.020Z",
            "status": "success", "inputs": {"messages": [{"role": "user", "content": "Capital of France?"}]},
            "outputs": None, "extra": {"metadata": {"ls_provider": "openai", "ls_model_name": "gpt-4.1-mini"}},
            "prompt_tokens": 640, "completion_tokens": 3, "total_tokens": 643,
        }, {"id": "ls-partial", "user": "Capital of France?", "tools": False, "response": None, "prompt": 640}),
        # A generic {request, response} wrapper from a translating gateway: an Anthropic-shaped
        # request with an OpenAI-shaped response (parsed whole), and one whose request kept only
        # the model and tools.
        ("wrapper.jsonl", {
            "request": {"model": "claude-sonnet-4-5", "max_tokens": 512, "system": "Be brief.",
                        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello?"}]}]},
            "response": {**reply, "id": "chatcmpl-w1", "model": "claude-sonnet-4-5",
                         "usage": {"prompt_tokens": 1500, "completion_tokens": 4}},
        }, {"id": "chatcmpl-w1", "user": "Hello?", "tools": False, "response": "It shipped today.", "prompt": 1500}),
        ("wrapper.jsonl", {
            "request": {"model": "gpt-4.1-mini", "tools": TOOLS},
            "response": {**reply, "id": "chatcmpl-w2", "usage": {"prompt_tokens": 1400, "completion_tokens": 4}},
        }, {"id": "chatcmpl-w2", "user": None, "tools": None, "response": "It shipped today.", "prompt": 1400}),
    ]


def otel_span_without_content() -> dict[str, Any]:
    """An OTLP/JSON export of one GenAI chat span whose instrumentation did not capture content
    (opt-in in the semantic conventions): usage and model only."""
    def attr(key: str, value: Any) -> dict[str, Any]:
        return {"key": key, "value": {"intValue": str(value)} if isinstance(value, int) else {"stringValue": value}}

    span = {"traceId": "7c8efff798038103d269b633813fc60c", "spanId": "bbbb000000000001", "name": "chat gpt-4.1-mini",
            "kind": 3, "startTimeUnixNano": "1784020323101000000", "endTimeUnixNano": "1784020324065000000",
            "attributes": [attr("gen_ai.operation.name", "chat"), attr("gen_ai.provider.name", "openai"),
                           attr("gen_ai.request.model", "gpt-4.1-mini"), attr("gen_ai.usage.input_tokens", 1300),
                           attr("gen_ai.usage.output_tokens", 12)], "status": {"code": 1}}
    return {"resourceSpans": [{"resource": {"attributes": [attr("service.name", "support-api")]},
                               "scopeSpans": [{"scope": {"name": "opentelemetry.instrumentation.openai_v2"},
                                               "spans": [span]}]}]}


def write_world(folder: Path) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    rows, spend_truth = litellm_spend_logs()
    with (folder / "litellm_spend_logs.jsonl").open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    # The same rows as a UI/SQL CSV export (JSON columns as JSON text): the first 40.
    with (folder / "litellm_spend_logs.csv").open("w", encoding="utf-8", newline="") as fh:
        cols = list(rows[0])
        out = csv.DictWriter(fh, fieldnames=cols)
        out.writeheader()
        for r in rows[:40]:
            if not r.get("prompt_tokens"):
                continue  # the nothing-recoverable rows are already tested in JSON
            out.writerow({k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in
                          {**r, "request_id": "csv-" + r["request_id"]}.items() if k in cols})
            spend_truth["csv-" + r["request_id"]] = {**spend_truth[r["request_id"]], "csv": True}
    others = other_adapters()
    for name in sorted({n for n, _, _ in others}):
        with (folder / name).open("w", encoding="utf-8") as fh:
            for n, rec, _ in others:
                if n == name:
                    fh.write(json.dumps(rec) + "\n")
    (folder / "otel.jsonl").write_text(json.dumps(otel_span_without_content()) + "\n", encoding="utf-8")
    otel = {"id": "7c8efff798038103d269b633813fc60c:bbbb000000000001", "user": None, "tools": False,
            "response": None, "prompt": 1300}
    return {"spend_logs": spend_truth, "others": {**{t["id"]: t for _, _, t in others}, otel["id"]: otel}}
