"""A small planted corpus for the task-type and signal tests (stdlib only; shares no code with the tool).

`write_planted(folder, seed)` writes envelope JSONL records and returns the truth per request id:
{task_type, regenerated, regeneration_of, retry_of, edited, feedback}. It plants exactly what the
unit tests need to tell apart, beside the full generator in sample_logs/:

- seven task types: two with a system prompt that changes version mid-period and carries dynamic
  spans (date, ticket id, uuid), one agent with tools and tool loops, one user-templated task
  without a system prompt, free-form chat without a system prompt, and two user templates that
  share one generic system prompt (must split);
- two task types that share a generic preamble (must NOT merge);
- regenerations (same session + messages, resent within a minute), retries after a 429 or a 500,
  n>1 requests (neither), edits (user pastes a modified reply), verbatim quotes (not edits),
  and thumbs / star feedback.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

PREAMBLE = "You are an assistant working for Northwind Trading. Be accurate and concise. Never invent facts."

TRIAGE_V1 = (
    PREAMBLE + " Today is {date}. Ticket {ticket} was opened by agent {agent}.\n"
    "Classify the customer ticket into exactly one category: billing, shipping, returns, account, other.\n"
    "Also rate its urgency from 1 to 5.\n"
    'Respond with JSON only: {{"category": ..., "urgency": ...}}.'
)
TRIAGE_V2 = (
    PREAMBLE + " Today is {date}. Ticket {ticket} was opened by agent {agent}.\n"
    "Classify the customer ticket into exactly one category: billing, shipping, returns, account, other.\n"
    "Also rate its urgency from 1 to 5 where 5 means the customer cannot use the service.\n"
    'Respond with JSON only: {{"category": ..., "urgency": ...}}.'
)
SUMMARY_V1 = (
    PREAMBLE + " Session {session}.\n"
    "You write short summaries of customer call transcripts for the account team.\n"
    "Use at most three sentences. Mention the product and the next step agreed on the call."
)
SUMMARY_V2 = (
    PREAMBLE + " Session {session}.\n"
    "You write short summaries of customer call transcripts for the account team.\n"
    "Use at most three sentences. Mention the product, the sentiment and the next step agreed on the call."
)
AGENT_SYSTEM = (
    "You are InventoryBot. Answer stock questions for warehouse {warehouse} by calling the tools.\n"
    "Always check the stock level before answering. Report quantities exactly as the tool returns them."
)
TOOLS = [
    {"type": "function", "function": {"name": "get_stock", "description": "Stock level of a SKU",
                                      "parameters": {"type": "object", "properties": {"sku": {"type": "string"}}}}},
    {"type": "function", "function": {"name": "list_orders", "description": "Open orders for a SKU",
                                      "parameters": {"type": "object", "properties": {"sku": {"type": "string"}}}}},
]
PRODUCTS = ["blue kettle", "oak desk", "garden hose", "steel ladder", "wool blanket", "desk lamp", "coffee grinder",
            "rain jacket", "bike helmet", "yoga mat", "travel mug", "phone stand"]
WORDS = ["order", "package", "refund", "delivered", "late", "broken", "invoice", "charged", "twice", "address", "password", "login", "account", "warehouse", "courier", "tracking", "damaged", "missing", "replacement", "discount", "subscription", "cancel", "upgrade", "weekend", "monday", "friday", "morning", "evening", "customer", "support", "manager", "email", "phone", "number", "card", "bank"]
GENERIC_SYSTEM = "You are a helpful assistant. Answer in English."
EXTRACT_ASK = "Extract the order number and the product name from this customer email and return them as JSON.\n\n{email}"
REPLY_ASK = "Draft a polite reply to the customer email below. Apologize once and propose a concrete next step.\n\n{email}"
TOPICS = ["photosynthesis", "the french revolution", "black holes", "sourdough bread", "compound interest",
          "the water cycle", "neural networks", "volcanoes", "the roman empire", "jazz music", "plate tectonics",
          "vaccines", "climate change", "the stock market", "chess openings", "origami"]
CHAT_FORMS = ["Can you explain {t} to a ten year old?", "What are three surprising facts about {t}?",
              "Write a haiku about {t}.", "Why do people find {t} confusing? Give a short answer.",
              "Give me a two sentence history of {t}.", "List pros and cons of learning about {t} this year."]


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def _reply(rng: random.Random, n_sentences: int) -> str:
    return " ".join(_sentence(rng, rng.randint(8, 14)) for _ in range(n_sentences))


def _modify(rng: random.Random, text: str) -> str:
    """A user's edit of a reply: a few words replaced, one dropped (high overlap, not identical)."""
    words = text.split()
    for _ in range(max(2, len(words) // 12)):
        words[rng.randrange(len(words))] = rng.choice(WORDS)
    del words[rng.randrange(len(words))]
    return " ".join(words)


class Writer:
    def __init__(self, rng: random.Random, start: datetime) -> None:
        self.rng = rng
        self.start = start
        self.records: list[dict[str, Any]] = []
        self.truth: dict[str, dict[str, Any]] = {}

    def emit(self, task: str, ts: datetime, request: dict, response: dict | None, *, user: str, session: str,
             error: dict | None = None, feedback: dict | None = None, **truth: Any) -> str:
        rid = f"req-{len(self.records):05d}"
        rec: dict[str, Any] = {"id": rid, "timestamp": ts.isoformat().replace("+00:00", "Z"), "user_id": user,
                               "session_id": session, "endpoint": "/v1/chat/completions", "request": request,
                               "response": response}
        if error:
            rec["error"] = error
            rec["response"] = None
        if feedback:
            rec["feedback"] = feedback
        self.records.append(rec)
        self.truth[rid] = {"task_type": task, "regenerated": False, "regeneration_of": None, "retry_of": None,
                           "edited": False, "feedback": feedback, **truth}
        return rid


def _chat_response(rng: random.Random, text: str | None, *, tool_calls: list | None = None,
                   n: int = 1, model: str = "gpt-4.1-mini") -> dict:
    choices = []
    for i in range(n):
        msg: dict[str, Any] = {"role": "assistant", "content": text if i == 0 else _reply(rng, 1)}
        finish = "stop"
        if tool_calls:
            msg = {"role": "assistant", "content": None, "tool_calls": tool_calls}
            finish = "tool_calls"
        choices.append({"index": i, "message": msg, "finish_reason": finish})
    return {"id": f"chatcmpl-{rng.getrandbits(48):x}", "object": "chat.completion", "model": model,
            "choices": choices, "usage": {"prompt_tokens": rng.randint(200, 900),
                                          "completion_tokens": rng.randint(20, 200)}}


def write_planted(folder: Path, seed: int = 11, conversations: int = 420) -> dict[str, dict[str, Any]]:
    rng = random.Random(seed)
    start = datetime(2026, 9, 1, tzinfo=UTC)
    w = Writer(rng, start)
    kinds = ["triage"] * 5 + ["summary"] * 3 + ["agent"] * 2 + ["translate"] * 3 + ["chat"] * 3 + ["extract", "reply"]
    for c in range(conversations):
        kind = kinds[c % len(kinds)]
        t0 = start + timedelta(days=30 * c / conversations, seconds=rng.randint(0, 3000))
        late = c > conversations // 2  # the second half runs on the new prompt versions
        user = f"u{rng.randint(1, 60)}"
        session = str(uuid.UUID(int=rng.getrandbits(128)))
        model = rng.choice(["gpt-4.1-mini", "gpt-4.1-mini", "gpt-4o"])
        if kind == "triage":
            system = (TRIAGE_V2 if late else TRIAGE_V1).format(
                date=t0.strftime("%Y-%m-%d"), ticket=f"TCK-{rng.randint(10000, 99999)}",
                agent=f"agent_{rng.randint(100, 999)}")
            ask = f"Customer wrote: {_sentence(rng, rng.randint(10, 30))}"
            answer = json.dumps({"category": rng.choice(["billing", "shipping", "returns"]),
                                 "urgency": rng.randint(1, 5)})
            _single_turn(w, kind, t0, system, ask, answer, model, user, session)
        elif kind == "summary":
            system = (SUMMARY_V2 if late else SUMMARY_V1).format(session=session)
            ask = "Transcript:\n" + "\n".join(f"{rng.choice(['Agent', 'Customer'])}: {_sentence(rng, 9)}"
                                              for _ in range(rng.randint(4, 9)))
            _conversation(w, kind, t0, system, ask, model, user, session)
        elif kind == "agent":
            _agent(w, t0, AGENT_SYSTEM.format(warehouse=f"WH-{rng.randint(1, 40)}"), model, user, session)
        elif kind == "translate":
            ask = ("Translate the following product note into German. Keep the formatting and do not add "
                   f"anything.\n\n{_sentence(rng, rng.randint(12, 25))}")
            _conversation(w, kind, t0, None, ask, model, user, session)
        elif kind in ("extract", "reply"):
            email = f"Hello, my order ORD-{rng.randint(10000, 99999)} {_sentence(rng, rng.randint(8, 20))} Regards, {user}"
            ask = (EXTRACT_ASK if kind == "extract" else REPLY_ASK).format(email=email)
            if kind == "extract":
                answer = json.dumps({"order": f"ORD-{rng.randint(10000, 99999)}", "product": rng.choice(PRODUCTS)})
                _single_turn(w, kind, t0, GENERIC_SYSTEM, ask, answer, model, user, session)
            else:
                _conversation(w, kind, t0, GENERIC_SYSTEM, ask, model, user, session)
        else:  # free-form chat: no template at all
            ask = _sentence(rng, rng.randint(5, 16)).rstrip(".") + "?"
            _conversation(w, kind, t0, None, ask, model, user, session)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "planted.jsonl", "w", encoding="utf-8") as fh:
        for rec in w.records:
            fh.write(json.dumps(rec) + "\n")
    return w.truth


def _request(system: str | None, messages: list[dict], model: str, **extra: Any) -> dict:
    msgs = ([{"role": "system", "content": system}] if system else []) + messages
    return {"model": model, "messages": msgs, **extra}


def _answer_with_signals(w: Writer, kind: str, ts: datetime, system: str | None, messages: list[dict],
                         text: str, model: str, user: str, session: str) -> tuple[str, str, datetime]:
    """One turn, possibly preceded by a failed attempt and followed by regenerations.

    Returns the request id and reply of the answer the user kept, and the time after the turn.
    """
    rng = w.rng
    roll = rng.random()
    prev_failed = None
    if roll < 0.06:  # rate limited or server error first, then retried
        status = rng.choice([429, 500])
        prev_failed = w.emit(kind, ts, _request(system, messages, model), None, user=user, session=session,
                             error={"status": status, "type": "rate_limit_error" if status == 429 else "server_error",
                                    "message": "try again"})
        ts += timedelta(seconds=rng.randint(1, 20))
    if 0.06 <= roll < 0.09:  # n > 1: several choices in one call, neither regenerated nor a regeneration
        rid = w.emit(kind, ts, _request(system, messages, model, n=3), _chat_response(rng, text, n=3, model=model),
                     user=user, session=session)
        return rid, text, ts + timedelta(seconds=30)
    rid = w.emit(kind, ts, _request(system, messages, model), _chat_response(rng, text, model=model),
                 user=user, session=session, retry_of=prev_failed)
    if 0.09 <= roll < 0.19:  # regenerated once or twice within a couple of minutes
        for _ in range(rng.choice([1, 1, 2])):
            ts += timedelta(seconds=rng.randint(5, 90))
            w.truth[rid]["regenerated"] = True
            text = text if kind == "triage" else _reply(rng, 2)
            new = w.emit(kind, ts, _request(system, messages, model), _chat_response(rng, text, model=model),
                         user=user, session=session, regeneration_of=rid)
            rid = new
    if 0.19 <= roll < 0.23:
        w.truth[rid]["feedback"] = {"rating": "down"}
        w.records[-1]["feedback"] = {"rating": "down"}
    elif 0.23 <= roll < 0.28:
        w.records[-1]["feedback"] = {"rating": rng.randint(1, 5), "scale": 5}
        w.truth[rid]["feedback"] = w.records[-1]["feedback"]
    return rid, text, ts + timedelta(seconds=rng.randint(20, 400))


def _single_turn(w: Writer, kind: str, ts: datetime, system: str, ask: str, answer: str, model: str,
                 user: str, session: str) -> None:
    _answer_with_signals(w, kind, ts, system, [{"role": "user", "content": ask}], answer, model, user, session)


def _conversation(w: Writer, kind: str, ts: datetime, system: str | None, ask: str, model: str,
                  user: str, session: str) -> None:
    rng = w.rng
    messages = [{"role": "user", "content": ask}]
    for turn in range(rng.choice([1, 1, 2, 3])):
        rid, reply, ts = _answer_with_signals(w, kind, ts, system, messages, _reply(rng, rng.randint(2, 4)),
                                              model, user, session)
        roll = rng.random()
        if roll < 0.22:  # the user pastes an edited copy of the reply
            follow = rng.choice(["", "Use this version instead:\n\n", "I fixed it:\n"]) + _modify(rng, reply)
            w.truth[rid]["edited"] = True
        elif roll < 0.32:  # the user quotes the reply verbatim and asks about it: NOT an edit
            follow = f'You wrote:\n"{reply}"\nWhy?'
        else:
            follow = rng.choice(["Shorter please.", "Can you add one more detail?", "Thanks, and what next?",
                                 f"What about the {rng.choice(PRODUCTS)}?"])
        messages = [*messages, {"role": "assistant", "content": reply}, {"role": "user", "content": follow}]
        if turn == 2 or rng.random() < 0.3:
            break
    # The last follow-up is answered too, so that edits made on the last reply are observable.
    _answer_with_signals(w, kind, ts, system, messages, _reply(rng, 2), model, user, session)


def _agent(w: Writer, ts: datetime, system: str, model: str, user: str, session: str) -> None:
    rng = w.rng
    sku = f"SKU-{rng.randint(1000, 9999)}"
    messages: list[dict] = [{"role": "user", "content": f"How many {rng.choice(PRODUCTS)} ({sku}) do we have left?"}]
    for step in range(rng.randint(1, 3)):
        call = [{"id": f"call_{rng.getrandbits(32):x}", "type": "function",
                 "function": {"name": rng.choice(["get_stock", "list_orders"]), "arguments": json.dumps({"sku": sku})}}]
        w.emit("agent", ts, _request(system, messages, model, tools=TOOLS),
               _chat_response(rng, None, tool_calls=call, model=model), user=user, session=session)
        ts += timedelta(seconds=rng.randint(2, 9))
        messages = [*messages, {"role": "assistant", "content": None, "tool_calls": call},
                    {"role": "tool", "tool_call_id": call[0]["id"], "content": json.dumps({"qty": rng.randint(0, 500),
                                                                                           "step": step})}]
    _answer_with_signals(w, "agent", ts, system, messages, f"We have {rng.randint(0, 500)} units of {sku}.",
                         model, user, session)
