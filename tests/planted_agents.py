"""Planted agent traffic (issue #13, parts 3 and 4; stdlib only, no project imports).

Fourteen task types of agent-style traffic: sessions of tool calls with growing, resent histories.
What the task typing must get right:

  * two pairs of tasks that share ONE system prompt and differ only by their tool set, both used
    throughout the period: an analytics agent with dashboard tools and one with SQL tools; a
    support agent and its escalation variant with two extra tools (a superset);
  * one task whose tools merely GREW (inventory: `get_stock`, then from mid-period also
    `list_orders`): a new version of one task, never two types;
  * the tool list arrives in a different order from request to request (order-insensitive);
  * the other tasks have their own system prompts, with or without tools.

`write_agents(folder)` writes envelope JSONL and returns the truth per request id
({task_type, session, step, final, rerun_of}). Questions and answers are random per session except
in re-runs (`rerun_share`), which repeat an earlier session with only the tool turns' ids and
timestamps changed: the dataset's near-duplicates are exactly those pairs.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

WORDS = ["order", "invoice", "payment", "account", "report", "team", "project", "plan", "service", "ticket", "issue", "problem", "request", "message", "email", "phone", "address", "name", "number", "list", "item", "product", "user", "system", "file", "page", "table", "query", "result", "value", "field", "record", "status", "update", "change", "note", "review", "check", "test", "build", "release", "customer", "shipping", "refund", "region", "quarter", "revenue", "margin", "forecast", "budget", "vendor", "contract", "policy", "schedule", "meeting", "warehouse", "stock", "supplier", "delivery", "package", "carrier", "route", "flight", "hotel", "booking", "trip"]


def tool(name: str, desc: str, *params: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": desc, "parameters": {
        "type": "object", "properties": {p: {"type": "string"} for p in params}, "required": list(params)}}}


T = {
    "create_chart": tool("create_chart", "Create a chart on a dashboard", "dashboard", "metric"),
    "list_dashboards": tool("list_dashboards", "List the dashboards of a team", "team"),
    "add_widget": tool("add_widget", "Add a widget to a dashboard", "dashboard", "widget"),
    "run_sql": tool("run_sql", "Run a read-only SQL query on the warehouse", "sql"),
    "describe_table": tool("describe_table", "Columns of a table", "table"),
    "list_tables": tool("list_tables", "Tables of a schema", "schema"),
    "lookup_order": tool("lookup_order", "Find an order by id", "order_id"),
    "issue_refund": tool("issue_refund", "Refund an order", "order_id", "amount"),
    "create_ticket": tool("create_ticket", "Open an escalation ticket", "summary", "priority"),
    "page_oncall": tool("page_oncall", "Page the on-call manager", "reason"),
    "get_stock": tool("get_stock", "Stock level of a SKU", "sku"),
    "list_orders": tool("list_orders", "Open purchase orders for a SKU", "sku"),
    "search_flights": tool("search_flights", "Search flights", "origin", "destination", "date"),
    "book_flight": tool("book_flight", "Book a flight", "flight_id"),
    "list_events": tool("list_events", "Calendar events of a day", "date"),
    "create_event": tool("create_event", "Create a calendar event", "title", "date"),
    "read_file": tool("read_file", "Read a file of the repository", "path"),
    "write_file": tool("write_file", "Write a file of the repository", "path", "content"),
    "run_tests": tool("run_tests", "Run the test suite", "target"),
    "web_search": tool("web_search", "Search the web", "query"),
    "fetch_page": tool("fetch_page", "Fetch a web page", "url"),
    "get_contact": tool("get_contact", "Find a CRM contact", "email"),
    "update_contact": tool("update_contact", "Update a CRM contact", "email", "field", "value"),
}

ANALYTICS = ("You are the analytics assistant of Contoso. You help business users answer questions about "
             "their metrics. Be precise, cite the numbers you used, and never guess a figure. When a request "
             "is ambiguous, ask one clarifying question before acting. Use the tools you are given.")
SUPPORT = ("You are the customer support agent of Fabrikam. Be friendly and brief. Verify the order before "
           "discussing it, follow the refund policy (refunds up to 100 USD without approval), and use the tools "
           "you are given for every action you take on an account.")


def _prompt(role: str, extra: str) -> str:
    return f"You are {role}. {extra} Answer in plain language and keep every reply under five sentences."


# name -> (system prompt, tool names, tool names after mid-period or None, sessions, steps range)
TASKS: dict[str, tuple[str, list[str], list[str] | None, int, tuple[int, int]]] = {
    "analytics_dashboards": (ANALYTICS, ["create_chart", "list_dashboards", "add_widget"], None, 40, (1, 3)),
    "analytics_sql": (ANALYTICS, ["run_sql", "describe_table", "list_tables"], None, 40, (1, 3)),
    "support": (SUPPORT, ["lookup_order", "issue_refund"], None, 45, (1, 2)),
    "support_escalation": (SUPPORT, ["lookup_order", "issue_refund", "create_ticket", "page_oncall"], None, 30, (2, 3)),
    "inventory": (_prompt("InventoryBot for the warehouse team", "Report stock levels exactly as the tools return them."),
                  ["get_stock"], ["get_stock", "list_orders"], 40, (1, 2)),
    "travel": (_prompt("a corporate travel booking agent", "Respect the travel policy: economy class under six hours."),
               ["search_flights", "book_flight"], None, 30, (1, 3)),
    "calendar": (_prompt("a scheduling assistant", "Never double-book a meeting room."),
                 ["list_events", "create_event"], None, 30, (1, 2)),
    "coding": (_prompt("a coding agent working in a Python repository", "Run the tests after every change."),
               ["read_file", "write_file", "run_tests"], None, 30, (3, 6)),
    "research": (_prompt("a research assistant", "Cite the pages you used."), ["web_search", "fetch_page"], None, 30, (1, 3)),
    "crm": (_prompt("a CRM data steward", "Only change a field when the user confirms it."),
            ["get_contact", "update_contact"], None, 30, (1, 2)),
    "hr_faq": (_prompt("the HR policy assistant of Fabrikam", "Quote the policy section you rely on."), [], None, 35, (0, 0)),
    "email_drafts": (_prompt("an email drafting assistant for the sales team", "Match the tone of the thread."), [], None,
                     35, (0, 0)),
    "classify": (_prompt("a ticket classifier", "Reply with one label: billing, shipping, returns or other."), [], None,
                 40, (0, 0)),
    "summarize": (_prompt("a meeting summarizer", "List decisions first, then action items with owners."), [], None, 35,
                  (0, 0)),
}


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def write_agents(folder: Path, seed: int = 13, days: int = 30, rerun_share: float = 0.1) -> dict[str, dict[str, Any]]:
    """`rerun_share` of the sessions re-run an earlier session of the same task: the same question,
    tool calls, tool results and answer, with fresh call ids, request ids and timestamps in the tool
    turns (an agent retried, a test suite replayed): near-duplicate training examples."""
    rng = random.Random(seed)
    start = datetime(2026, 9, 1, tzinfo=UTC)
    records: list[dict[str, Any]] = []
    truth: dict[str, dict[str, Any]] = {}
    sessions = [(name, k) for name, spec in TASKS.items() for k in range(spec[3])]
    rng.shuffle(sessions)
    scripts: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for n_session, (name, k) in enumerate(sessions):
        system, tools, grown, count, (lo, hi) = TASKS[name]
        t0 = start + timedelta(days=days * (k + rng.random() * 0.8) / count, seconds=rng.randint(0, 3600))
        late = (t0 - start).days >= days // 2
        names = grown if grown and late else tools
        session = f"s{n_session:04d}-{rng.getrandbits(32):08x}"
        user = f"u{rng.randint(1, 80)}"
        earlier = [(sid, sc) for sid, sc in scripts.get(name, []) if sc["names"] == names]
        rerun_of = None
        if earlier and rng.random() < rerun_share:
            rerun_of, script = rng.choice(earlier)
        else:
            steps = rng.randint(lo, hi) if names else 0
            script = {"names": names, "question": _sentence(rng, rng.randint(12, 30)),
                      "calls": [(rng.choice(names), rng.choice(WORDS), rng.randint(0, 99), _sentence(rng, 6))
                                for _ in range(steps)],
                      "answer": " ".join(_sentence(rng, rng.randint(8, 16)) for _ in range(3))}
            scripts.setdefault(name, []).append((session, script))
        messages: list[dict[str, Any]] = [{"role": "system", "content": system},
                                          {"role": "user", "content": script["question"]}]
        ts = t0
        calls = script["calls"]
        for step in range(len(calls) + 1):
            final = step == len(calls)
            listed = [T[n] for n in names]
            rng.shuffle(listed)  # clients send the tool list in any order
            request: dict[str, Any] = {"model": "gpt-4.1-mini", "messages": list(messages)}
            if listed:
                request["tools"] = listed
            if final:
                message: dict[str, Any] = {"role": "assistant", "content": script["answer"]}
                finish = "stop"
            else:
                fn, arg, rows, note = calls[step]
                call = {"id": f"call_{rng.getrandbits(40):x}", "type": "function",
                        "function": {"name": fn, "arguments": json.dumps(
                            {"q": arg, "idempotency_key": f"{rng.getrandbits(64):016x}"})}}
                message = {"role": "assistant", "content": None, "tool_calls": [call]}
                finish = "tool_calls"
            rid = f"{name}-{k:03d}-{step}"
            records.append({
                "id": rid, "timestamp": ts.isoformat().replace("+00:00", "Z"), "user_id": user, "session_id": session,
                "endpoint": "/v1/chat/completions", "request": request,
                "response": {"id": f"chatcmpl-{rid}", "object": "chat.completion", "model": "gpt-4.1-mini",
                             "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                             "usage": {"prompt_tokens": 400 + 60 * step, "completion_tokens": 40}},
            })
            truth[rid] = {"task_type": name, "session": session, "step": step, "final": final, "rerun_of": rerun_of}
            if not final:
                result = {"request_id": f"req_{rng.getrandbits(48):012x}", "fetched_at": int(ts.timestamp() * 1000),
                          "trace": f"{rng.getrandbits(64):016x}", "rows": rows, "note": note}
                messages = [*messages, message, {"role": "tool", "tool_call_id": message["tool_calls"][0]["id"],
                                                 "content": json.dumps(result)}]
            ts += timedelta(seconds=rng.randint(3, 20))
    records.sort(key=lambda r: (r["timestamp"], r["id"]))
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "agents.jsonl", "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec) + "\n")
    return truth
