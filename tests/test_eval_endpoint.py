"""`logaudit eval --endpoint`: against an OpenAI-compatible server started on 127.0.0.1 inside the test.

The server answers each eval prompt with a planted answer of known score, returns 429 (with and
without Retry-After) and 503 on some first attempts, answers some slowly and some slower than
the client's timeout. The socket guard lets the tool connect to that server only. An interrupted
run (the CLI in a subprocess, killed with SIGKILL) resumes without re-asking answered examples.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import EvalError
from pipeline.evaluate import EvalConfig, evaluate
from pipeline.evaluate.endpoint import AnswerCache
from pipeline.evaluate.examples import Answer, EvalExample
from pipeline.workdir.paths import workdir_paths
from tests.planted_eval import PlantedServer, write_workdir

ROOT = Path(__file__).resolve().parent.parent
SECRET = "sk-test-" + "q" * 40
TOOLS = [{"type": "function", "function": {"name": "lookup_order", "description": "find an order",
                                           "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}}}}]
LABELS = ("positive", "negative", "neutral")


def build_examples() -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], dict[str, float]]:
    """(examples, planted server reply per example_id, planted score per task type)."""
    examples, replies = [], {}

    def add(task: str, i: int, system: str, user: str, reference: dict[str, Any], reply: dict[str, Any],
            tools: list | None = None) -> None:
        ex_id = f"ex_{task}_{i:03d}"
        examples.append({"example_id": ex_id, "request_id": f"req_{task}_{i:03d}", "task_type": task, "tools": tools,
                         "messages": [{"role": "system", "content": system}, {"role": "user", "content": user},
                                      {"role": "assistant", **reference}]})
        replies[ex_id] = reply

    for i in range(24):  # classification: 3 wrong of 24; right answers in another case/punctuation
        label = LABELS[i % 3]
        got = LABELS[(i + 1) % 3] if i < 3 else (label.capitalize() + "." if i % 2 else label)
        add("task_labels", i, "Classify the sentiment of the review. Answer with one word.", f"review number {i} text",
            {"content": label}, {"content": got})
    for i in range(20):  # json: 4 of 20 drop one of 3 fields
        ref = {"name": f"name {i}", "city": ["paris", "lima"][i % 2], "age": 20 + i}
        got = {k: v for k, v in ref.items() if not (i < 4 and k == "age")}
        add("task_json", i, "Extract the person as JSON.", f"person {i} lives somewhere", {"content": json.dumps(ref)},
            {"content": json.dumps(got)})
    for i in range(20):  # tool calls: 2 wrong tool, 2 wrong argument
        call = {"id": f"call_{i}", "type": "function", "function": {"name": "lookup_order",
                                                                     "arguments": json.dumps({"order_id": f"A{i}"})}}
        name = "cancel_order" if i < 2 else "lookup_order"
        arg = f"B{i}" if 2 <= i < 4 else f"A{i}"
        got = {"id": f"c{i}", "type": "function", "function": {"name": name, "arguments": json.dumps({"order_id": arg})}}
        add("task_tools", i, "You help with orders; use the tools.", f"where is order A{i}?",
            {"content": None, "tool_calls": [call]}, {"content": None, "tool_calls": [got]}, tools=TOOLS)
    for i in range(10):  # text, fewer than min_examples: exact answers
        text = f"the answer number {i} is a short sentence about the weather today"
        add("task_text", i, "Answer the question.", f"question {i}", {"content": text}, {"content": text})
    planted = {"task_labels": 21 / 24, "task_json": 1 - 4 / 20 / 3, "task_tools": 16 / 20, "task_text": 1.0}
    return examples, replies, planted


@pytest.fixture
def planted(tmp_path: Path):
    examples, replies, scores = build_examples()
    workdir = tmp_path / "wd"
    write_workdir(workdir, examples)
    return workdir, examples, replies, scores


FAST = {"concurrency": 4, "timeout_s": 0.5, "backoff_initial_s": 0.01, "backoff_max_s": 0.05, "max_attempts": 4,
        "api_key_env": "LOGAUDIT_TEST_KEY"}


def test_endpoint_scores_retries_and_cache(planted, allow_only, monkeypatch: pytest.MonkeyPatch) -> None:
    workdir, examples, replies, scores = planted
    monkeypatch.setenv("LOGAUDIT_TEST_KEY", SECRET)
    allowed, attempts = allow_only
    with PlantedServer(examples, replies) as server:
        allowed.append(server.address)
        result = evaluate(workdir, "local-ft", endpoint=server.url, model="ft-1", config={"eval": FAST})
        s = result.summary
        # every example answered once, after the planted failures were retried
        assert sum(server.answered.values()) == len(examples) and set(server.answered.values()) == {1}
        failures = len(server.rate_limited | server.unavailable | server.too_slow)  # one failed first attempt each
        assert sum(server.asks.values()) == len(examples) + failures == s["source"]["http_requests"]
        assert all(server.asks[e] == 2 for e in server.rate_limited | server.unavailable | server.too_slow)
        assert 1 < server.max_in_flight <= FAST["concurrency"]
        assert server.auth == {f"Bearer {SECRET}"} and server.models == {"ft-1"}
        tasks = {t["task_type"]: t for t in s["tasks"]}
        assert {t: tasks[t]["kind"] for t in tasks} == {"task_labels": "classification", "task_json": "json",
                                                        "task_tools": "tool_call", "task_text": "text"}
        for task, planted_score in scores.items():
            assert tasks[task]["score"] == pytest.approx(planted_score), task
            assert tasks[task]["ci_low"] <= planted_score <= tasks[task]["ci_high"]
        assert tasks["task_labels"]["decision"] == "api" and tasks["task_json"]["decision"] == "api"
        assert tasks["task_tools"]["metrics"]["details"] == {"argument_mismatch": 2, "wrong_tool": 2}
        assert s["source"] == {"kind": "endpoint", "url": server.url + "/chat/completions", "model": "ft-1",
                               "api_key_env": "LOGAUDIT_TEST_KEY", "asked": len(examples), "cached": 0,
                               "http_requests": len(examples) + failures}

        # A re-run costs nothing: every answer comes from the cache.
        before = sum(server.asks.values())
        again = evaluate(workdir, "local-ft", endpoint=server.url, model="ft-1", config={"eval": FAST}).summary
        assert sum(server.asks.values()) == before
        assert again["source"]["asked"] == 0 and again["source"]["cached"] == len(examples)
        assert again["tasks"] == s["tasks"]
        # Another model under the same candidate name is not served from that cache.
        evaluate(workdir, "local-ft", endpoint=server.url, model="ft-2", config={"eval": FAST})
        assert sum(server.asks.values()) == before + len(examples)
    assert {tuple(a[:2]) for a in attempts} == {server.address}
    # The key went only into the Authorization header: no file of the work dir holds it.
    for path in workdir.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_endpoint_gives_up_cleanly_and_keeps_what_it_got(planted, allow_only) -> None:
    workdir, examples, replies, _ = planted
    allowed, _ = allow_only
    with PlantedServer(examples, replies) as server:
        allowed.append(server.address)
        config = {"eval": {**FAST, "max_attempts": 1}}  # no retries: the planted failures stay failures
        with pytest.raises(EvalError) as err:
            evaluate(workdir, "one-shot", endpoint=server.url, model="m", config=config)
        failed = len(server.rate_limited | server.unavailable | server.too_slow)
        assert str(err.value).startswith(f"{failed} of {len(examples)} examples got no answer from `{server.url}/chat/completions`")
        assert "re-run the same command to resume" in str(err.value)
        assert not (workdir / "eval" / "one-shot" / "summary.json").exists()
        cache = workdir_paths(workdir).eval_answers("one-shot")  # beside the versions, kept for a resume
        assert len(cache.read_text(encoding="utf-8").splitlines()) == len(examples) - failed
        # the resumed run asks only the examples that failed
        before = Counter(server.asks)
        evaluate(workdir, "one-shot", endpoint=server.url, model="m", config={"eval": FAST})
        asked_again = {e for e in server.asks if server.asks[e] > before[e]}
        assert asked_again == server.rate_limited | server.unavailable | server.too_slow


def test_interrupted_run_resumes_without_reasking(planted, allow_only, tmp_path: Path) -> None:
    workdir, examples, replies, scores = planted
    allowed, _ = allow_only
    config = tmp_path / "eval.toml"
    config.write_text("[eval]\nconcurrency = 2\ntimeout_s = 20\nbackoff_initial_s = 0.01\nbackoff_max_s = 0.05\n",
                      encoding="utf-8")
    cache = workdir_paths(workdir).eval_answers("ft")
    with PlantedServer(examples, replies) as server:
        allowed.append(server.address)
        server.rate_limited = server.unavailable = server.too_slow = set()
        server.block_after = 10  # answer 10 examples, then hold every request: the run is killed mid-way
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "eval", str(workdir), "--candidate", "ft", "--endpoint", server.url,
             "--model", "ft-1", "--config", str(config), "--no-progress"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            deadline = time.monotonic() + 120
            while not (cache.is_file() and len(cache.read_text(encoding="utf-8").splitlines()) >= 10):
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the subprocess did not answer 10 examples in time"
                time.sleep(0.05)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
        answered_before = {json.loads(line)["example_id"] for line in cache.read_text(encoding="utf-8").splitlines()}
        assert 10 <= len(answered_before) <= 12  # + at most the 2 requests in flight when the hold began
        server.block_after = None
        server.release.set()
        result = evaluate(workdir, "ft", endpoint=server.url, model="ft-1",
                          config={"eval": {"concurrency": 2, "backoff_initial_s": 0.01}})
    # nothing answered before the kill was asked again; everything else was asked and answered
    # (an answer the killed run received but had not yet written is asked again: it was never cached)
    assert all(server.answered[e] == 1 and server.asks[e] == 1 for e in answered_before)
    assert set(server.answered) == {ex["example_id"] for ex in examples}
    cached = len(answered_before)
    assert result.summary["source"]["cached"] == cached and result.summary["source"]["asked"] == len(examples) - cached
    tasks = {t["task_type"]: t for t in result.summary["tasks"]}
    assert {t: pytest.approx(v) for t, v in scores.items()} == {t: tasks[t]["score"] for t in scores}


def test_answer_cache_survives_a_cut_line(tmp_path: Path) -> None:
    ex = EvalExample("ex_1", "req_1", "t", [{"role": "user", "content": "hi"}], Answer("yo"))
    other = EvalExample("ex_2", "req_2", "t", [{"role": "user", "content": "ho"}], Answer("yo"))
    cache = AnswerCache(tmp_path / "answers.jsonl", "c", "m")
    cache.put(ex, {"answer": {"content": "hello", "tool_calls": []}})
    with (tmp_path / "answers.jsonl").open("ab") as fh:
        fh.write(b'{"candidate": "c", "model": "m", "example_id": "ex_2", "prom')  # killed mid-write
    reloaded = AnswerCache(tmp_path / "answers.jsonl", "c", "m").load()
    assert reloaded.get(ex) == Answer("hello") and reloaded.get(other) is None
    reloaded.put(other, {"answer": {"content": "again", "tool_calls": []}})
    final = AnswerCache(tmp_path / "answers.jsonl", "c", "m").load()
    assert final.get(other) == Answer("again") and final.get(ex) == Answer("hello")
    # a changed prompt is a cache miss
    changed = EvalExample("ex_1", "req_1", "t", [{"role": "user", "content": "hi there"}], Answer("yo"))
    assert final.get(changed) is None


def test_config_rejects_unknown_task_options() -> None:
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match=r"Unknown key\(s\) in \[eval.tasks.t1\]: kindd"):
        EvalConfig.from_toml({"eval": {"tasks": {"t1": {"kindd": "sql"}}}})
    with pytest.raises(ConfigError, match=r"unknown key `marginn` in \[eval\] \(did you mean `margin`\?\)"):
        EvalConfig.from_toml({"eval": {"marginn": 0.1}})


@pytest.mark.parametrize(("section", "message"), [
    ({"margin": 1.0}, "[eval] margin = 1.0 must be between 0 and 1."),
    ({"min_examples": 0}, "[eval] min_examples = 0 must be >= 1."),
    ({"concurrency": 0}, "[eval] concurrency = 0 must be >= 1."),
    ({"baselines": {"prose": 0.5}}, "Unknown kind(s) in [eval.baselines]: prose."),
])
def test_config_checks_values(section: dict, message: str) -> None:
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        EvalConfig.from_toml({"eval": section})
    assert str(err.value).startswith(message)
    assert EvalConfig.from_toml({"eval": {"margin": 0.0, "baselines": {"text": 0.6}}}).baselines["text"] == 0.6


def test_report_section_flags_a_candidate_scored_on_an_older_split(planted, tmp_path: Path) -> None:
    from pipeline.report.evaluations import evaluations, section_markdown

    workdir, examples, replies, _ = planted
    predictions = tmp_path / "p.jsonl"
    predictions.write_text("\n".join(json.dumps({"id": i, "answer": r}) for i, r in replies.items()) + "\n",
                           encoding="utf-8")
    evaluate(workdir, "ft", predictions=predictions)
    (entry,), problems = evaluations(workdir, [{"id": "task_json", "projected_monthly_savings": 12.5}])
    assert entry["stale"] is False and problems == {}
    assert next(t for t in entry["tasks"] if t["task_type"] == "task_json")["projected_monthly_savings"] == 12.5
    examples[0]["messages"][-1]["content"] = "neutral"  # the dataset is rebuilt with another reference
    write_workdir(workdir, examples)
    (entry,), _ = evaluations(workdir, [])
    assert entry["stale"] is True
    assert "**Stale**" in section_markdown([entry], str, str)
    (workdir / "eval" / "broken").mkdir()
    (workdir / "eval" / "broken" / "summary.json").write_text("{", encoding="utf-8")
    entries, problems = evaluations(workdir, [])
    assert [e["candidate"] for e in entries] == ["ft"] and list(problems) == ["eval:broken"]


def test_a_candidate_decision_without_a_fingerprint_stays_on_the_api(planted, tmp_path: Path) -> None:
    from pipeline.report.evaluations import evaluations, section_markdown

    workdir, examples, _, _ = planted  # no audit: no task fingerprints to route on
    predictions = tmp_path / "perfect.jsonl"
    predictions.write_text("\n".join(json.dumps({"id": ex["example_id"], "answer": ex["messages"][-1]})
                                     for ex in examples) + "\n", encoding="utf-8")
    s = evaluate(workdir, "perfect", predictions=predictions).summary
    tasks = {t["task_type"]: t for t in s["tasks"]}
    assert tasks["task_json"]["decision"] == "candidate" and tasks["task_json"]["routed"] is False
    assert tasks["task_json"]["not_routed_because"] == "no system-prompt fingerprint to route on"
    assert tasks["task_text"]["decision"] == "api"  # 10 examples, and no baseline for text
    assert s["routing"]["candidate_tasks"] == [] and s["routing"]["routed_request_share"] is None
    (entry,), _ = evaluations(workdir, [])
    assert "stays on the API: no system-prompt fingerprint" in section_markdown([entry], str, str)
