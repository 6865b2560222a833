"""A planted world whose provider departs from the documented caching rules (issue #13, part 1).

Stdlib only and independent of the tool (it imports nothing from audit/ or pipeline/): it plays
the PROVIDER, with its own cache implementation and its own TRUE rules, and reports what that
provider would have reported. The tool must recover the true rules from those reports.

Planted behaviour (the documented table in audit/prices.toml says otherwise):
  gpt-4.1            automatic prefix caching, min 1,024, 128-token steps, TRUE TTL 60 min (table: 5)
  claude-haiku-4-5   cache_control breakpoints, TRUE minimum 2,048 tokens (table: 4,096), TTL 5 min
  claude-sonnet-4-5  as documented (min 1,024, TTL 5): calibration must keep the table
  gpt-4o-mini        usage without cache fields: no evidence, the table stays and the report says so
  gpt-4o             (only with `hidden_writers`) every logged request is preceded by an UNLOGGED one
                     with the same prompt: reads no logged request explains, which must be flagged

Token counting: prompts are made of words that are one o200k_base token each (checked by the test),
and each message costs 3 framing tokens plus 3 for the reply, so a prompt's provider tokens are
3 + |system| + 3 + |user| + 3, the same framing the tool's estimate uses.

Truth per request: `reported_read` (what the provider reported; the as-logged truth) and
`ideal_bp_read` (what the provider would have read had every request carried a breakpoint after the
system prompt, under the TRUE rules).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

FRAMING = 3
WORDS = tuple(
    ["the", "and", "or", "but", "if", "then", "so", "because", "when", "while", "where", "which", "that", "this", "these", "those", "it", "they", "them", "we", "our", "you", "your", "he", "she", "his", "her", "is", "are", "was", "were", "be", "been", "have", "has", "had", "do", "does", "did", "will", "would", "can", "could", "should", "may", "might", "must", "order", "customer", "data", "report", "account", "invoice", "payment", "price", "cost", "total", "amount", "date", "time", "day", "week", "month", "year", "team", "project", "plan", "service", "support", "ticket", "issue", "problem", "error", "request", "response", "message", "email", "phone", "address", "name", "number", "list", "item", "product", "user", "system", "file", "page", "table", "query", "result", "value", "field", "record", "status", "update", "change", "note", "review", "check", "test", "build", "release", "new", "old", "first", "last", "next", "good", "bad", "high", "low", "small", "large", "long", "short", "fast", "slow", "early", "late", "open", "close", "clear", "full", "empty", "simple", "make", "get", "use", "find", "send", "read", "write", "show", "tell", "ask", "give", "take", "keep", "help", "need", "want", "know", "see", "look", "work", "call", "run", "start", "stop", "add", "remove", "move", "set", "put", "return", "save", "load", "create", "delete", "edit", "reply", "share", "sign", "pay", "buy", "sell", "ship", "deliver", "track", "follow", "please", "thanks", "hello", "today", "now", "here", "there", "also", "only", "just", "still", "again"]
)


@dataclass(frozen=True)
class TrueRules:
    kind: str  # auto_prefix | breakpoints
    min_tokens: int
    ttl_minutes: float
    step_tokens: int = 1


TRUE_RULES = {
    "gpt-4.1": TrueRules("auto_prefix", 1024, 60, 128),
    "gpt-4o": TrueRules("auto_prefix", 1024, 5, 128),
    "gpt-4o-mini": TrueRules("auto_prefix", 1024, 5, 128),
    "claude-haiku-4-5": TrueRules("breakpoints", 2048, 5),
    "claude-sonnet-4-5": TrueRules("breakpoints", 1024, 5),
}
PROVIDER = {"gpt-4.1": "openai", "gpt-4o": "openai", "gpt-4o-mini": "openai", "claude-haiku-4-5": "anthropic",
            "claude-sonnet-4-5": "anthropic"}


@dataclass
class Task:
    name: str
    model: str
    system_words: int
    cache_control: bool
    requests: int
    gaps_minutes: list[tuple[float, float, float]]  # (weight, low, high) of the idle gap before a request
    reports_cache: bool = True
    hidden_writer: bool = False
    system: list[str] = field(default_factory=list)


def _h(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()


class Provider:
    """The provider's real cache, per model, under its TRUE rules."""

    def __init__(self) -> None:
        self.auto: dict[str, float] = {}  # prefix key (128-token steps) -> last use (minutes)
        self.marks: dict[str, float] = {}  # breakpoint prefix -> last use
        self.ideal_marks: dict[str, float] = {}  # same, as if every request had a system breakpoint

    def auto_prefix(self, model: str, now: float, tokens: list[str]) -> int:
        rules = TRUE_RULES[model]
        if len(tokens) < rules.min_tokens:
            return 0
        step = rules.step_tokens
        keys = [_h(model, *tokens[: (k + 1) * step]) for k in range(len(tokens) // step)]
        live = 0
        for key in keys:
            t = self.auto.get(key)
            if t is None or now - t > rules.ttl_minutes:
                break
            live += 1
        for key in keys:
            self.auto[key] = now
        read = live * step
        return read if read >= rules.min_tokens else 0

    def breakpoint(self, table: dict[str, float], model: str, now: float, prefix: list[str]) -> tuple[int, int]:
        rules = TRUE_RULES[model]
        if len(prefix) < rules.min_tokens:
            return 0, 0
        key = _h(model, *prefix)
        t = table.get(key)
        table[key] = now
        if t is not None and now - t <= rules.ttl_minutes:
            return len(prefix), 0
        return 0, len(prefix)


def default_tasks(hidden_writers: bool = False) -> list[Task]:
    short = [(0.8, 0.5, 4.0), (0.2, 6.0, 20.0)]
    tasks = [
        # gpt-4.1: idle gaps under 5 min, 6-50 min (hits only with the true 60-minute TTL) and over an hour.
        Task("gpt41_support", "gpt-4.1", 1700, False, 220, [(0.4, 0.5, 4.0), (0.4, 6.0, 50.0), (0.2, 70.0, 240.0)]),
        Task("gpt41_sql", "gpt-4.1", 2300, False, 220, [(0.4, 0.5, 4.0), (0.4, 6.0, 50.0), (0.2, 70.0, 240.0)]),
        # claude-haiku-4-5: ~2,800-token prompts the true minimum caches and the table's 4,096 does not; a
        # 1,500-token prompt below the true minimum; one task without cache_control (the ideal_bp what-if).
        Task("haiku_triage", "claude-haiku-4-5", 2800, True, 260, short),
        Task("haiku_short", "claude-haiku-4-5", 1500, True, 160, short),
        Task("haiku_nocc", "claude-haiku-4-5", 2600, False, 160, short),
        Task("sonnet_email", "claude-sonnet-4-5", 1800, True, 260, [(0.7, 0.5, 4.5), (0.3, 5.5, 12.0)]),
        Task("mini_extract", "gpt-4o-mini", 1500, False, 200, short, reports_cache=False),
    ]
    if hidden_writers:
        tasks.append(Task("gpt4o_prefetched", "gpt-4o", 1600, False, 150, [(1.0, 2.0, 30.0)], hidden_writer=True))
    return tasks


def generate(seed: int = 13, hidden_writers: bool = False, start: datetime | None = None,
             scale: float = 1.0) -> list[dict[str, Any]]:
    """Requests in time order, each with its prompt, the provider's reported usage and the truth
    (`scale` multiplies every task's requests: 12 gives ~20,000)."""
    rng = random.Random(seed)
    start = start or datetime(2026, 9, 1, 8, tzinfo=UTC)
    tasks = default_tasks(hidden_writers)
    for task in tasks:
        task.requests = max(1, round(task.requests * scale))
    events: list[tuple[float, int, Task, int]] = []
    for ti, task in enumerate(tasks):
        task.system = [rng.choice(WORDS) for _ in range(task.system_words)]
        now = rng.uniform(0, 30)
        for n in range(task.requests):
            events.append((now, ti, task, n))
            w = rng.random()
            for weight, lo, hi in task.gaps_minutes:
                if w < weight:
                    now += rng.uniform(lo, hi)
                    break
                w -= weight
    events.sort(key=lambda e: (e[0], e[1], e[3]))
    provider = Provider()
    out: list[dict[str, Any]] = []
    for now, _, task, n in events:
        model = task.model
        rules = TRUE_RULES[model]
        user = [rng.choice(WORDS) for _ in range(rng.randint(30, 80))]
        system = task.system
        if task.hidden_writer:
            # A per-customer prompt warmed by an unlogged request a few seconds earlier.
            system = [f"{rng.choice(WORDS)}" for _ in range(task.system_words)]
        prefix = ["<s>"] * FRAMING + system
        tokens = prefix + ["<u>"] * FRAMING + user
        total = len(tokens) + FRAMING
        if rules.kind == "auto_prefix":
            if task.hidden_writer:
                provider.auto_prefix(model, now - 0.1, tokens)
            read = provider.auto_prefix(model, now, tokens)
            write = 0
            ideal = read
        else:
            read = write = 0
            if task.cache_control:
                read, write = provider.breakpoint(provider.marks, model, now, prefix)
            ideal, _ = provider.breakpoint(provider.ideal_marks, model, now, prefix)
        out.append({
            "request_id": f"{task.name}-{n}", "ts": start + timedelta(minutes=now), "task": task.name,
            "provider": PROVIDER[model], "model": model, "system_text": " ".join(system), "user_text": " ".join(user),
            "cache_control": task.cache_control, "reports_cache": task.reports_cache,
            "input_total": total, "reported_read": read, "reported_write": write, "ideal_bp_read": ideal,
        })
    return out


def per_model_truth(records: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per model: input tokens, reported (= true as-logged) and ideal_bp cached shares."""
    agg: dict[str, dict[str, float]] = {}
    for r in records:
        a = agg.setdefault(r["model"], {"input": 0, "read": 0, "ideal_bp": 0})
        a["input"] += r["input_total"]
        a["read"] += r["reported_read"]
        a["ideal_bp"] += r["ideal_bp_read"]
    return {m: {"input": a["input"], "reported_share": a["read"] / a["input"], "ideal_bp_share": a["ideal_bp"] / a["input"]}
            for m, a in agg.items()}
