"""`--endpoint URL --model M`: ask an OpenAI-compatible chat endpoint for the eval answers.

The only network the tool ever uses, and only when asked: requests go to exactly the URL given
(no redirects followed, no proxy or netrc taken from the environment). Bounded concurrency (a
thread pool of `concurrency`), retries with exponential backoff and jitter (tenacity) on 429, 408,
409, 5xx, timeouts and connection errors, honouring `Retry-After`; a per-request timeout.

Answers are cached on disk as they arrive (`answers.jsonl`, one fsynced line per (candidate,
example)), so an interrupted run resumes where it stopped and a re-run asks nothing. A cached
answer is reused only for the same model and the same prompt (`prompt_sha`). The API key comes
from an environment variable and is only ever put in the Authorization header.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import EvalError
from pipeline.evaluate.config import EvalConfig
from pipeline.evaluate.examples import Answer, EvalExample

RETRY_STATUS = frozenset({408, 409, 429})


class RetryableError(Exception):
    """A transient failure (429, 5xx, timeout, connection): worth another attempt."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FatalError(Exception):
    """A failure another attempt will not fix (4xx other than 408/409/429, a malformed response)."""


def chat_url(url: str) -> str:
    """The chat-completions URL of a base URL (`http://host:8000/v1`) or the full URL as given."""
    url = url.strip()
    return url if url.rstrip("/").endswith("/chat/completions") else url.rstrip("/") + "/chat/completions"


@dataclass
class AnswerCache:
    """`answers.jsonl`: one JSON line per answered example, appended and fsynced as answers arrive."""

    path: Path
    candidate: str
    model: str
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def load(self) -> AnswerCache:
        if not self.path.is_file():
            return self
        with self.path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a killed run: that example is asked again
                if entry.get("candidate") == self.candidate and entry.get("model") == self.model:
                    self.entries[entry["example_id"]] = entry
        return self

    def get(self, ex: EvalExample) -> Answer | None:
        entry = self.entries.get(ex.example_id)
        if entry is None or entry.get("prompt_sha") != ex.prompt_sha:
            return None
        return Answer.from_message(entry["answer"])

    def put(self, ex: EvalExample, reply: dict[str, Any]) -> None:
        entry = {"candidate": self.candidate, "model": self.model, "example_id": ex.example_id,
                 "prompt_sha": ex.prompt_sha, **reply}
        line = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab") as fh:
                if fh.tell() and not self._ends_with_newline():
                    fh.write(b"\n")  # after a line cut by a killed run
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
            self.entries[ex.example_id] = entry

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) == b"\n"


@dataclass(frozen=True)
class EndpointRun:
    answers: dict[str, Answer]
    asked: int
    """Examples sent to the endpoint in this run (the rest came from the cache)."""
    cached: int
    failures: dict[str, str]
    """example_id -> last error, for examples still unanswered after every attempt."""
    attempts: int
    """HTTP requests made (including retries)."""


def ask_endpoint(examples: Sequence[EvalExample], url: str, model: str, cache: AnswerCache, cfg: EvalConfig,
                 on_answer: Callable[[int, int], None] | None = None) -> EndpointRun:
    """Answers for every example: cached ones from `cache`, the others from the endpoint."""
    import httpx

    target = chat_url(url)
    if not target.startswith(("http://", "https://")):
        raise EvalError(f"--endpoint `{url}` is not an http(s) URL.")
    api_key = os.environ.get(cfg.api_key_env) if cfg.api_key_env else None
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    answers: dict[str, Answer] = {}
    todo: list[EvalExample] = []
    for ex in examples:
        cached = cache.get(ex)
        if cached is None:
            todo.append(ex)
        else:
            answers[ex.example_id] = cached
    failures: dict[str, str] = {}
    counter = {"attempts": 0, "done": 0}
    lock = threading.Lock()
    timeout = httpx.Timeout(cfg.timeout_s)
    limits = httpx.Limits(max_connections=cfg.concurrency, max_keepalive_connections=cfg.concurrency)
    with httpx.Client(timeout=timeout, limits=limits, headers=headers, follow_redirects=False, trust_env=False) as client:

        def one(ex: EvalExample) -> tuple[EvalExample, dict[str, Any]]:
            def attempt() -> dict[str, Any]:
                with lock:
                    counter["attempts"] += 1
                return _post(client, target, _body(ex, model, cfg))

            return ex, _retrying(cfg)(attempt)

        pool = ThreadPoolExecutor(max_workers=max(1, cfg.concurrency), thread_name_prefix="logaudit-eval")
        try:
            futures = {pool.submit(one, ex): ex for ex in todo}
            for future in as_completed(futures):
                try:
                    ex, reply = future.result()
                except (RetryableError, FatalError) as e:
                    failures[futures[future].example_id] = str(e)
                    continue
                cache.put(ex, reply)
                answers[ex.example_id] = Answer.from_message(reply["answer"])
                counter["done"] += 1
                if on_answer is not None:
                    on_answer(counter["done"], len(todo))
        except BaseException:
            # Ctrl-C (or any failure): stop asking now; what was answered is already in the cache.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    return EndpointRun(answers, len(todo), len(examples) - len(todo), failures, counter["attempts"])


def _body(ex: EvalExample, model: str, cfg: EvalConfig) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": ex.messages, "temperature": cfg.temperature}
    if ex.tools:
        body["tools"] = ex.tools
    if cfg.max_tokens:
        body["max_tokens"] = cfg.max_tokens
    return body


def _post(client: Any, url: str, body: dict[str, Any]) -> dict[str, Any]:
    import httpx

    started = time.perf_counter()
    try:
        response = client.post(url, json=body)
    except httpx.TimeoutException as e:
        raise RetryableError(f"timed out ({type(e).__name__})") from e
    except httpx.TransportError as e:
        raise RetryableError(f"connection failed ({type(e).__name__}: {e})") from e
    status = response.status_code
    if status in RETRY_STATUS or status >= 500:
        raise RetryableError(f"HTTP {status}: {response.text[:200]}", _retry_after(response.headers.get("retry-after")))
    if status >= 300:
        raise FatalError(f"HTTP {status}: {response.text[:200]}")
    try:
        payload = response.json()
        choice = payload["choices"][0]
        message = choice["message"]
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise FatalError(f"not a chat completion response: {response.text[:200]}") from e
    answer = Answer.from_message(message)
    return {
        "answer": {"content": answer.content,
                   "tool_calls": [{"type": "function", "function": c} for c in answer.tool_calls]},
        "finish_reason": choice.get("finish_reason"),
        "usage": payload.get("usage"),
        "latency_ms": round((time.perf_counter() - started) * 1000, 1),
    }


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to the exponential backoff


def _retrying(cfg: EvalConfig) -> Any:
    import tenacity

    # "full jitter": a random wait up to min(max, initial * 2^attempt), so parallel workers spread out
    backoff = tenacity.wait_random_exponential(multiplier=cfg.backoff_initial_s, max=cfg.backoff_max_s)

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        return min(retry_after, cfg.backoff_max_s) if retry_after is not None else backoff(state)

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(RetryableError),
        wait=wait,
        stop=tenacity.stop_after_attempt(max(1, cfg.max_attempts)),
        reraise=True,
    )
