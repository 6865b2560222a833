"""Planted candidates for `logaudit eval`: production answers degraded in known ways, and a small
hand-built eval split. Shares no code with `pipeline/evaluate`: expected scores are computed here
from the planted degradations (field counts, exact counts of broken answers)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from schemas.dataset import LINEAGE_SCHEMA

FILLER = ("zebra", "quartz", "violin", "nebula", "saffron", "glacier", "tundra", "walnut")


def write_workdir(workdir: Path, examples: list[dict[str, Any]], fmt: str = "openai") -> None:
    """A dataset folder holding only an eval split: lineage.parquet, eval.jsonl, manifest.json.
    Each example: {example_id, request_id, task_type, messages (ending with the assistant answer), tools?}."""
    dataset = workdir / "dataset"
    dataset.mkdir(parents=True, exist_ok=True)
    lines, rows = [], []
    for i, ex in enumerate(examples, 1):
        record: dict[str, Any] = {"messages": ex["messages"]}
        if ex.get("tools"):
            record["tools"] = ex["tools"]
        lines.append(json.dumps(record))
        rows.append({"kind": "example", "example_id": ex["example_id"], "split": "eval", "task_type": ex["task_type"],
                     "request_id": ex["request_id"], "source_request_ids": [ex["request_id"]], "file": "eval.jsonl",
                     "line": i})
    (dataset / "eval.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    pq.write_table(pa.Table.from_pylist(rows, schema=LINEAGE_SCHEMA), dataset / "lineage.parquet")
    digest = hashlib.sha256((dataset / "eval.jsonl").read_bytes()).hexdigest()
    manifest = {"config": {"format": fmt}, "files": {"eval.jsonl": {"split": "eval", "sha256": digest}}}
    (dataset / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def last_answer(record_messages: list[dict[str, Any]]) -> dict[str, Any]:
    return record_messages[-1]


# --- degradations --------------------------------------------------------------------------------


def wrong_label(answer_json: str, field: str, labels: tuple[str, ...]) -> str:
    obj = json.loads(answer_json)
    obj[field] = next(x for x in labels if x != obj[field])
    return json.dumps(obj)


def drop_fields(answer_json: str, k: int) -> tuple[str, float]:
    """The answer without its last k fields, and the planted score (fields kept / fields)."""
    obj = json.loads(answer_json)
    keys = list(obj)
    kept = {key: obj[key] for key in keys[: len(keys) - k]}
    return json.dumps(kept), (len(keys) - k) / len(keys)


def break_sql(answer: str, variant: int) -> str:
    """Variant 0: the statement cut after FROM (does not parse); 1: a different filter (parses, not equivalent)."""
    if variant == 0:
        return re.sub(r"(```sql\n.*?\bfrom)\b.*?```", r"\1\n```", answer, count=1, flags=re.DOTALL)
    return re.sub(r"where o\.status = '(\w+)'", lambda m: f"where o.status = '{m.group(1)}x'", answer, count=1)


def equivalent_sql(answer: str) -> str:
    """The same query written differently: upper-case keywords and names, INNER JOIN, the join
    condition's operands swapped, different line breaks. Must still score 1."""
    m = re.search(r"```sql\n(.*?)```", answer, flags=re.DOTALL)
    assert m is not None
    sql = m.group(1)
    sql = re.sub(r"join customers c on c\.customer_id = o\.customer_id",
                 "INNER JOIN customers c ON o.customer_id = c.customer_id", sql)
    sql = " ".join(sql.split()).upper()
    # string literals keep their case: the status value is data
    sql = re.sub(r"O\.STATUS = '(\w+)'", lambda mm: f"O.STATUS = '{mm.group(1).lower()}'", sql)
    return answer[: m.start(1)] + sql + "\n" + answer[m.end(1):]


def paraphrase(text: str, every: int, seed: int) -> str:
    """Replace every `every`-th word by a word that never occurs in the sample's vocabulary."""
    rng = random.Random(seed)
    words = text.split(" ")
    for i in range(every - 1, len(words), every):
        words[i] = rng.choice(FILLER)
    return " ".join(words)


# --- an OpenAI-compatible server on 127.0.0.1 ----------------------------------------------------


class PlantedServer:
    """An OpenAI-compatible /v1/chat/completions on 127.0.0.1 serving planted answers."""

    def __init__(self, examples: list[dict[str, Any]], replies: dict[str, dict[str, Any]]) -> None:
        self.by_prompt = {self.key(ex["messages"][:-1]): ex["example_id"] for ex in examples}
        self.replies = replies
        ids = sorted(replies)
        self.rate_limited = set(ids[0:80:10])  # 8 examples: a 429 on the first attempt
        self.unavailable = set(ids[5:80:25])  # 3 examples: a 503 on the first attempt
        self.slow = set(ids[3:80:16])  # 5 examples: 0.2 s
        self.too_slow = set(ids[7:80:40])  # 2 examples: slower than the timeout on the first attempt
        self.asks: Counter[str] = Counter()
        self.answered: Counter[str] = Counter()
        self.auth: set[str | None] = set()
        self.models: set[str] = set()
        self.in_flight = 0
        self.max_in_flight = 0
        self.block_after: int | None = None  # answer this many, then hold every further request
        self.release = threading.Event()
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                # the client may have given up (timeout) or been killed
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    server.handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.address = self.httpd.server_address[:2]
        self.url = f"http://127.0.0.1:{self.address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @staticmethod
    def key(messages: list[dict[str, Any]]) -> str:
        return json.dumps(messages, sort_keys=True)

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        body = json.loads(h.rfile.read(int(h.headers["Content-Length"])))
        ex_id = self.by_prompt[self.key(body["messages"])]
        with self.lock:
            self.asks[ex_id] += 1
            attempt = self.asks[ex_id]
            self.auth.add(h.headers.get("Authorization"))
            self.models.add(body["model"])
            hold = self.block_after is not None and sum(self.answered.values()) >= self.block_after
            # Requests the client is still waiting for (one it abandoned at its timeout is not).
            counted = not (attempt == 1 and ex_id in self.too_slow)
            self.in_flight += counted
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            self.respond(h, body, ex_id, attempt, hold)
        finally:
            with self.lock:
                self.in_flight -= counted

    def respond(self, h: BaseHTTPRequestHandler, body: dict[str, Any], ex_id: str, attempt: int, hold: bool) -> None:
        if hold:
            self.release.wait(30)
            return
        if attempt == 1 and ex_id in self.rate_limited:
            headers = {"Retry-After": "0"} if int(ex_id[-3:]) % 2 else {}
            return self.send(h, 429, {"error": {"type": "rate_limit_exceeded", "message": "slow down"}}, headers)
        if attempt == 1 and ex_id in self.unavailable:
            return self.send(h, 503, {"error": {"message": "overloaded"}})
        if attempt == 1 and ex_id in self.too_slow:
            time.sleep(1.2)
        elif ex_id in self.slow:
            time.sleep(0.2)
        reply = self.replies[ex_id]
        payload = {"id": "chatcmpl-x", "object": "chat.completion", "model": body["model"],
                   "choices": [{"index": 0, "message": {"role": "assistant", **reply},
                                "finish_reason": "tool_calls" if reply.get("tool_calls") else "stop"}],
                   "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}
        self.send(h, 200, payload)
        with self.lock:
            self.answered[ex_id] += 1

    @staticmethod
    def send(h: BaseHTTPRequestHandler, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def __enter__(self) -> PlantedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
