"""`build_dataset` on small planted logs: every filter, session collapse, tools, PII modes, formats, split, CLI."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.dataset import DatasetConfig, build_dataset
from pipeline.dataset.targets import FORMATS, validate_openai
from pipeline.ingest import ingest

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu", "nu",
         "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega", "red", "green", "blue",
         "cyan", "amber", "olive", "coral", "ivory", "jade", "pearl"]
OPENAI_KEY = "sk-proj-" + "A1b2C3d4" * 8
EMAIL = "bob.smith77@example.com"
PHONE = "415-555-0134"
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather by city",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
CALL = [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]


class Logs:
    """Envelope records (OpenAI chat bodies) with known outcomes."""

    def __init__(self) -> None:
        self.rng = random.Random(3)
        self.lines: list[str] = []
        self.n = 0

    def words(self, n: int) -> str:
        return " ".join(self.rng.choice(WORDS) for _ in range(n))

    def add(self, msgs: list[dict[str, Any]], text: str | None, *, finish: str = "stop", session: str | None = None,
            feedback: int | None = None, error: dict[str, Any] | None = None, tools: list | None = None,
            tool_calls: list | None = None, system: str = "You are a helpful bot.", fmt: dict | None = None) -> str:
        rid = f"r{self.n:04d}"
        ts = 1_788_000_000 + self.n * 60
        self.n += 1
        req: dict[str, Any] = {"model": "gpt-4.1-mini", "messages": [{"role": "system", "content": system}, *msgs]}
        if tools:
            req["tools"] = tools
        if fmt:
            req["response_format"] = fmt
        msg: dict[str, Any] = {"role": "assistant", "content": text}
        if tool_calls:
            msg["tool_calls"] = tool_calls
        resp = None if error else {
            "id": f"chatcmpl-{rid}", "object": "chat.completion", "model": "gpt-4.1-mini",
            "choices": [{"index": 0, "message": msg, "finish_reason": finish}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
        rec: dict[str, Any] = {"id": rid, "timestamp": ts, "provider": "openai", "endpoint": "/v1/chat/completions",
                               "request": req, "response": resp, "session_id": session}
        if error:
            rec["error"] = error
        if feedback is not None:
            rec["feedback"] = {"rating": feedback}
        self.lines.append(json.dumps(rec))
        return rid


def _planted(root: Path) -> dict[str, Any]:
    """Write the logs and the labels; return the planted ids by outcome."""
    logs = Logs()
    p: dict[str, Any] = {"plain": []}
    base = []
    for _ in range(60):
        u, a = logs.words(30), logs.words(40)
        base.append((u, a))
        p["plain"].append(logs.add([{"role": "user", "content": u}], a))
    p["duplicate"] = logs.add([{"role": "user", "content": base[0][0]}], base[0][1], feedback=1)
    near_user = base[1][0].split()
    near_user[3] = "zzz"
    p["near_duplicate"] = logs.add([{"role": "user", "content": " ".join(near_user)}], base[1][1])
    p["truncated"] = logs.add([{"role": "user", "content": logs.words(20)}], logs.words(10), finish="length")
    p["refusal"] = logs.add([{"role": "user", "content": logs.words(20)}], "I'm sorry, but I can't help with that request.")
    p["filtered"] = logs.add([{"role": "user", "content": logs.words(20)}], None, finish="content_filter")
    p["error"] = logs.add([{"role": "user", "content": logs.words(20)}], None,
                          error={"status": 429, "type": "rate_limit_error", "message": "slow down"})
    p["empty"] = logs.add([{"role": "user", "content": logs.words(20)}], "")
    p["negative"] = logs.add([{"role": "user", "content": logs.words(20)}], logs.words(20), feedback=-1)
    p["secret"] = logs.add([{"role": "user", "content": f"my key is {OPENAI_KEY} and mail {EMAIL} {logs.words(10)}"}],
                           f"{logs.words(20)} call {PHONE}")
    p["regenerated"] = logs.add([{"role": "user", "content": logs.words(25)}], logs.words(25))
    # A three-turn session whose middle answer the user edited.
    u1, a1, u2, a2, u3, a3 = (logs.words(12) for _ in range(6))
    turn1 = [{"role": "user", "content": u1}]
    turn2 = [*turn1, {"role": "assistant", "content": a1}, {"role": "user", "content": u2}]
    turn3 = [*turn2, {"role": "assistant", "content": a2}, {"role": "user", "content": u3}]
    p["session"] = [logs.add(turn1, a1, session="s1"), logs.add(turn2, a2, session="s1"), logs.add(turn3, a3, session="s1")]
    p["edited_answer"] = a2
    # A tool flow: the call, then the answer after the tool result.
    ask = [{"role": "user", "content": "what is the weather in paris today?"}]
    p["tools"] = [
        logs.add(ask, None, finish="tool_calls", tools=TOOLS, tool_calls=CALL, session="s2"),
        logs.add([*ask, {"role": "assistant", "content": None, "tool_calls": CALL},
                  {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'}], "It is 21C in Paris.",
                 tools=TOOLS, session="s2"),
    ]
    # A JSON task: six valid objects and one broken one.
    p["json_ok"] = [logs.add([{"role": "user", "content": f"extract {logs.words(15)}"}],
                             json.dumps({"vendor": logs.words(2), "total": i}), system="Return only JSON.")
                    for i in range(6)]
    p["invalid_json"] = logs.add([{"role": "user", "content": f"extract {logs.words(15)}"}], '{"vendor": "x", "total": ',
                                 system="Return only JSON.")
    p["all"] = [f"r{i:04d}" for i in range(logs.n)]
    (root / "logs.jsonl").write_text("\n".join(logs.lines) + "\n", encoding="utf-8")
    return p


def _write_labels(workdir: Path, p: dict[str, Any]) -> None:
    labels = []
    for rid in p["all"]:
        task = "extract_json" if rid in p["json_ok"] or rid == p["invalid_json"] else "chat"
        labels.append({"request_id": rid, "task_type": task, "regenerated": rid == p["regenerated"],
                       "edited": rid == p["session"][1], "feedback_rating": None, "clean_example": None,
                       "is_retry": False})
    (workdir / "audit").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(labels), workdir / "audit" / "request_labels.parquet")


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("dataset_logs")
    p = _planted(root)
    workdir = root / "work"
    ingest([str(root / "logs.jsonl")], workdir, progress=False)
    _write_labels(workdir, p)
    return workdir, p


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _lineage(workdir: Path) -> list[dict[str, Any]]:
    return pq.read_table(workdir / "dataset" / "lineage.parquet").to_pylist()


@pytest.fixture(scope="module")
def built(planted: tuple[Path, dict[str, Any]]) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    workdir, p = planted
    result = build_dataset(workdir)
    return workdir, p, result.manifest


def test_every_planted_request_is_dropped_by_the_right_filter(built: Any) -> None:
    workdir, p, manifest = built
    reason_of = {r["request_id"]: r["reason"] for r in _lineage(workdir) if r["kind"] == "dropped"}
    expected = {
        p["error"]: "error", p["empty"]: "empty_response", p["truncated"]: "truncated", p["refusal"]: "refusal",
        p["filtered"]: "refusal", p["regenerated"]: "regenerated", p["session"][1]: "edited",
        p["negative"]: "negative_feedback", p["invalid_json"]: "invalid_format",
        p["plain"][0]: "duplicate",  # the positively rated copy is kept
        p["plain"][1]: "near_duplicate",  # the more recent near-copy is kept
    }
    assert reason_of == expected
    counts = manifest["counts"]
    assert counts["requests_in"] == len(p["all"]) == counts["requests_kept"] + counts["requests_dropped"]
    assert sum(counts["dropped"].values()) == counts["requests_dropped"] == len(expected)
    assert manifest["filters_order"][:5] == ["error", "truncated", "refusal", "empty_response", "empty_prompt"]


def test_lineage_accounts_for_every_request_exactly_once(built: Any) -> None:
    workdir, p, manifest = built
    rows = _lineage(workdir)
    seen = [rid for r in rows for rid in r["source_request_ids"]]
    assert sorted(seen) == sorted(p["all"])
    examples = [r for r in rows if r["kind"] == "example"]
    assert len(examples) == manifest["counts"]["train"] + manifest["counts"]["eval"]
    for r in examples:  # each example row points at its line
        record = _read(workdir / "dataset" / r["file"])[r["line"] - 1]
        assert record["messages"][-1]["role"] == "assistant"


def test_a_session_becomes_one_example_with_earlier_turns_and_the_edited_turn_weighted_zero(built: Any) -> None:
    workdir, p, _ = built
    row = next(r for r in _lineage(workdir) if r["kind"] == "example" and r["request_id"] == p["session"][2])
    # The edited middle request is dropped; the first turn and the final state form the example.
    assert row["source_request_ids"] == [p["session"][0], p["session"][2]]
    msgs = _read(workdir / "dataset" / row["file"])[row["line"] - 1]["messages"]
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant", "user", "assistant"]
    assert [m.get("weight") for m in msgs if m["role"] == "assistant"] == [None, 0, None]


def test_tool_flow_is_one_openai_example_with_tools(built: Any) -> None:
    workdir, p, _ = built
    row = next(r for r in _lineage(workdir) if r["kind"] == "example" and r["request_id"] == p["tools"][1])
    assert row["source_request_ids"] == p["tools"]
    record = _read(workdir / "dataset" / row["file"])[row["line"] - 1]
    assert [m["role"] for m in record["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    assert record["messages"][2]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert record["tools"][0]["function"]["name"] == "get_weather"


def test_secrets_are_redacted_and_files_validate_and_do_not_leak(built: Any) -> None:
    workdir, _, manifest = built
    text = (workdir / "dataset" / "train.jsonl").read_text() + (workdir / "dataset" / "eval.jsonl").read_text()
    for value in (OPENAI_KEY, EMAIL, PHONE):
        assert value not in text
    assert "[REDACTED_OPENAI_KEY]" in text and "[REDACTED_EMAIL]" in text and "[REDACTED_PHONE]" in text
    assert manifest["pii"]["found"] == {"EMAIL": 1, "OPENAI_KEY": 1, "PHONE": 1}
    for name in ("train.jsonl", "eval.jsonl"):
        for record in _read(workdir / "dataset" / name):
            assert validate_openai(record, 65_536, 1) == []
    assert manifest["validation"]["invalid_records"] == 0
    assert manifest["validation"]["records_checked"] == manifest["counts"]["examples_kept"]
    assert manifest["leakage"]["pairs"] == 0 and manifest["leakage"]["eval_checked"] == manifest["counts"]["eval"]


def test_split_is_stratified_seeded_and_keeps_sessions_whole(built: Any) -> None:
    workdir, p, manifest = built
    rows = [r for r in _lineage(workdir) if r["kind"] == "example"]
    per_task = manifest["per_task"]
    sizes = manifest["split"]["eval_per_task"]
    for task, v in per_task.items():
        n = v.get("train", 0) + v.get("eval", 0)
        # Small planted types: the 200 target is out of reach, so 30% at most (20% at least, groups allowing).
        assert sizes[task]["target"] == min(200, max(round(0.2 * n), round(0.3 * n)))
        assert v.get("eval", 0) <= sizes[task]["target"]
        assert sizes[task]["warning"] and f"{v.get('eval', 0)} eval examples" in sizes[task]["warning"]
    chat = per_task["chat"]["train"] + per_task["chat"]["eval"]
    assert per_task["chat"]["eval"] == round(0.3 * chat)
    card = (workdir / "dataset" / "dataset_card.md").read_text(encoding="utf-8")
    assert "below the 200-example test set" in card
    split_of = {rid: r["split"] for r in rows for rid in r["source_request_ids"]}
    assert split_of[p["session"][0]] == split_of[p["session"][2]]
    assert manifest["seed"] == 13


@pytest.mark.parametrize(("n", "target"), [
    (0, 0), (126, 38),  # small: 30% at most
    (660, 198), (667, 200),  # 30% reaches the 200-example target at 667
    (1000, 200), (2500, 500), (2505, 500), (5000, 500),  # 20% from 1,000 up to the 500 cap
])
def test_eval_policy_targets(n: int, target: int) -> None:
    from pipeline.dataset.assemble import EvalPolicy

    assert EvalPolicy().target(n) == target


def test_rebuild_is_byte_identical(built: Any, tmp_path: Path) -> None:
    workdir, _, _ = built
    before = {n: (workdir / "dataset" / n).read_bytes() for n in ("train.jsonl", "eval.jsonl")}
    build_dataset(workdir)
    assert {n: (workdir / "dataset" / n).read_bytes() for n in before} == before


def test_buckets_do_not_change_the_output(built: Any) -> None:
    """Conversations split over many buckets (a session's turns, the tool flow and the duplicate pairs
    in different ones) give the same files as one bucket: everything cross-bucket is global."""
    workdir, _, manifest = built
    before = {n: (workdir / "dataset" / n).read_bytes() for n in ("train.jsonl", "eval.jsonl", "lineage.parquet")}
    many = build_dataset(workdir, DatasetConfig(rows_per_bucket=7, workers=1)).manifest
    assert many["execution"]["buckets"] > 10 and manifest["execution"]["buckets"] == 1
    assert {n: (workdir / "dataset" / n).read_bytes() for n in before} == before
    assert many["counts"] == manifest["counts"] and many["per_task"] == manifest["per_task"]
    build_dataset(workdir)


def test_the_leakage_check_runs_while_the_files_are_written(built: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each side waits for the other to have started: run one after the other, the first times out."""
    from pipeline.dataset import assemble

    workdir, _, manifest = built
    started = {"leakage": threading.Event(), "write": threading.Event()}
    real_leakage, real_write_files = assemble.leakage, assemble.write_files

    def leakage(*args: Any) -> Any:
        started["leakage"].set()
        assert started["write"].wait(30), "the leakage check waited for the files"
        return real_leakage(*args)

    def write_files(*args: Any) -> Any:
        started["write"].set()
        assert started["leakage"].wait(30), "the files waited for the leakage check"
        return real_write_files(*args)

    monkeypatch.setattr(assemble, "leakage", leakage)
    monkeypatch.setattr(assemble, "write_files", write_files)
    before = {n: (workdir / "dataset" / n).read_bytes() for n in ("train.jsonl", "eval.jsonl", "lineage.parquet")}
    again = build_dataset(workdir).manifest
    assert again["leakage"] == manifest["leakage"] and again["leakage"]["eval_checked"] > 0
    assert {n: (workdir / "dataset" / n).read_bytes() for n in before} == before


def test_another_seed_gives_another_split(planted: Any) -> None:
    workdir, _ = planted
    first = (workdir / "dataset" / "eval.jsonl").read_text() if (workdir / "dataset").exists() else None
    build_dataset(workdir, DatasetConfig(seed=99))
    assert (workdir / "dataset" / "eval.jsonl").read_text() != first
    build_dataset(workdir)  # leave the default build for the other tests


def test_hugging_face_datasets_loads_train_jsonl_offline(built: Any, monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import datasets

    workdir, _, manifest = built
    ds = datasets.load_dataset("json", data_files=str(workdir / "dataset" / "train.jsonl"), split="train",
                               cache_dir=str(tmp_path / "cache"))
    assert ds.num_rows == manifest["counts"]["train"]
    assert ds[0]["messages"][-1]["role"] == "assistant"


@pytest.mark.parametrize("fmt", ["anthropic", "sharegpt", "trl"])
def test_other_formats_validate_and_drop_what_they_cannot_represent(planted: Any, fmt: str, tmp_path: Path) -> None:
    workdir, p = planted
    manifest = build_dataset(workdir, DatasetConfig(format=fmt)).manifest
    unsupported = manifest["counts"]["dropped"]["unsupported_tool_calls"]
    assert unsupported == (0 if FORMATS[fmt].supports_tools else len(p["tools"]))
    assert manifest["validation"]["invalid_records"] == 0
    for name in ("train.jsonl", "eval.jsonl"):
        for record in _read(workdir / "dataset" / name):
            assert FORMATS[fmt].validate(record) == []
    build_dataset(workdir)


@pytest.mark.parametrize("fmt", ["openai", "anthropic", "sharegpt", "trl"])
def test_no_format_trains_on_a_rejected_turn(planted: Any, fmt: str) -> None:
    """The session's middle answer was edited (rejected). OpenAI keeps it as context with weight 0; a
    format without per-turn weights would train on it, so its example is dropped and counted."""
    workdir, p = planted
    manifest = build_dataset(workdir, DatasetConfig(format=fmt)).manifest
    rejected = p["edited_answer"]
    targets = []  # every assistant turn a trainer would learn from
    for name in ("train.jsonl", "eval.jsonl"):
        for record in _read(workdir / "dataset" / name):
            turns = record.get("messages") or record.get("conversations")
            targets += [m.get("content") or m.get("value") or "" for m in turns
                        if (m.get("role") == "assistant" or m.get("from") == "gpt") and m.get("weight") != 0]
    assert not any(rejected in t for t in targets)
    card = (workdir / "dataset" / "dataset_card.md").read_text(encoding="utf-8")
    assert manifest["rejected_turns"]["examples_with_rejected_turn"] == 1
    reason_of = {r["request_id"]: r["reason"] for r in _lineage(workdir) if r["kind"] == "dropped"}
    if fmt == "openai":
        assert manifest["rejected_turns"]["examples_dropped"] == 0 and "weight 0" in card
        assert reason_of.get(p["session"][2]) is None  # the session is an example
    else:
        assert manifest["rejected_turns"]["examples_dropped"] == 1
        assert manifest["counts"]["dropped"]["rejected_turn"] == 2 == manifest["rejected_turns"]["requests_dropped"]
        assert reason_of[p["session"][0]] == reason_of[p["session"][2]] == "rejected_turn"
        assert reason_of[p["session"][1]] == "edited"
        assert "1 example(s) dropped" in card
    # The estimate says whether it priced the target the way it is billed.
    assert manifest["estimate"]["approximate"] is (fmt != "openai")
    build_dataset(workdir)


def test_pii_drop_and_keep(planted: Any) -> None:
    workdir, p = planted
    dropped = build_dataset(workdir, DatasetConfig(pii="drop")).manifest
    assert dropped["counts"]["dropped"]["pii"] == 1
    reason_of = {r["request_id"]: r["reason"] for r in _lineage(workdir) if r["kind"] == "dropped"}
    assert reason_of[p["secret"]] == "pii"
    kept = build_dataset(workdir, DatasetConfig(pii="keep")).manifest
    assert kept["pii"]["found"] == {"EMAIL": 1, "OPENAI_KEY": 1, "PHONE": 1}
    assert OPENAI_KEY in (workdir / "dataset" / "train.jsonl").read_text() + (workdir / "dataset" / "eval.jsonl").read_text()
    build_dataset(workdir)


def test_per_task_writes_one_dataset_per_task_type(planted: Any) -> None:
    workdir, _ = planted
    manifest = build_dataset(workdir, DatasetConfig(per_task=True)).manifest
    assert sorted(manifest["files"]) == ["tasks/chat/eval.jsonl", "tasks/chat/train.jsonl",
                                         "tasks/extract_json/eval.jsonl", "tasks/extract_json/train.jsonl"]
    assert manifest["files"]["tasks/extract_json/eval.jsonl"] == {**manifest["files"]["tasks/extract_json/eval.jsonl"],
                                                                  "task_type": "extract_json", "split": "eval"}
    assert not (workdir / "dataset" / "train.jsonl").exists()
    build_dataset(workdir)


def test_token_limit_drops_long_examples(planted: Any) -> None:
    workdir, _ = planted
    manifest = build_dataset(workdir, DatasetConfig(max_example_tokens=90)).manifest
    assert manifest["counts"]["dropped"]["over_token_limit"] > 0
    assert manifest["tokens"]["max_example"] <= 90
    build_dataset(workdir)


def test_without_labels_the_label_filters_are_skipped_and_said_so(tmp_path: Path) -> None:
    p = _planted(tmp_path)
    workdir = tmp_path / "work"
    ingest([str(tmp_path / "logs.jsonl")], workdir, progress=False)
    manifest = build_dataset(workdir).manifest
    assert manifest["labels"]["present"] is False
    assert manifest["labels"]["skipped_filters"] == ["regenerated", "edited"]
    assert "regenerated" not in manifest["counts"]["dropped"]
    assert set(manifest["per_task"]) == {"unlabeled"}
    reason_of = {r["request_id"]: r["reason"] for r in _lineage(workdir) if r["kind"] == "dropped"}
    assert p["session"][1] not in reason_of  # not edited without labels: merged into the session example


def test_cli_dataset(planted: Any) -> None:
    workdir, _ = planted
    runner = CliRunner(env={"COLUMNS": "80"})
    result = runner.invoke(cli, ["dataset", str(workdir), "--format", "openai", "--seed", "13"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Dataset written to {workdir / 'dataset'}/ (openai format)\n")
    assert "leakage pairs (eval~train, Jaccard >= 0.8): 0" in result.output


def test_cli_reports_bad_config_as_an_error(planted: Any, tmp_path: Path) -> None:
    workdir, _ = planted
    config = tmp_path / "bad.toml"
    config.write_text('[dataset]\nfilters = ["error", "no_such_filter"]\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["dataset", str(workdir), "--config", str(config)])
    assert result.exit_code == 1
    assert result.output.startswith("Error: Unknown filter(s) no_such_filter in [dataset] filters.")


def test_dataset_schema_doc_is_current() -> None:
    from schemas import dataset

    assert (Path(dataset.__file__).parent / "dataset.md").read_text(encoding="utf-8") == dataset.markdown()


REFUSALS = [
    "I'm sorry, but I can't help with that request.", "I’m sorry, but I can’t assist with that.",
    "Sorry, I cannot provide that information.", "I apologize, but I won't be able to help with this.",
    "I can't help with that.", "I cannot comply with this request.", "As an AI language model, I cannot browse.",
    "I must decline.", "Unfortunately, I am unable to help with that.", "I am not able to provide medical advice.",
]
NOT_REFUSALS = [
    "Sorry to hear that, I can't imagine how frustrating that is. Here is what to do:",
    "Sorry for the delay! Your order shipped.", "I can't wait to help you with this!",
    "Here is the summary: the team cannot provide estimates.", "I apologize for the confusion. The total is $40.",
]


@pytest.mark.parametrize(("text", "is_refusal"), [(t, True) for t in REFUSALS] + [(t, False) for t in NOT_REFUSALS])
def test_refusals_are_anchored_phrases_not_topic_words(text: str, is_refusal: bool) -> None:
    from pipeline.dataset.filters import REFUSAL

    assert bool(REFUSAL.match(text)) is is_refusal


@pytest.mark.parametrize(("rows", "workers", "groups"), [
    ([10, 10, 10, 10], 2, [["d0", "d1"], ["d2", "d3"]]),
    ([30, 5, 5], 2, [["d0"], ["d1", "d2"]]),  # a large first day is a group alone
    ([19, 1, 20], 2, [["d0", "d1"], ["d2"]]),  # just reaching half closes the group
    ([19, 20, 1], 2, [["d0", "d1"], ["d2"]]),  # just short of half does not
    ([5, 5, 5], 1, [["d0", "d1", "d2"]]),
    ([5, 5, 5], 8, [["d0"], ["d1"], ["d2"]]),  # never more groups than days
])
def test_partition_jobs_are_consecutive_days_of_about_equal_rows(rows: list[int], workers: int,
                                                                  groups: list[list[str]]) -> None:
    from pipeline.dataset.stage import _partition_jobs

    partitions = [(f"date=d{i}", [(f"d{i}", n)]) for i, n in enumerate(rows)]
    jobs = _partition_jobs(partitions, sum(rows), workers)
    assert [list(files) for _, files in jobs] == groups
    assert len({name for name, _ in jobs}) == len(jobs)  # each group writes its own part files

