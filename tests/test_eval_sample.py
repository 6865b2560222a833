"""`logaudit eval` on the sample's eval split with planted candidates of known quality.

The production answers of the eval split are degraded at known, exact counts per (truth) task:
wrong labels, dropped JSON fields, broken SQL (and equivalent rewrites that must still score 1),
paraphrased text, missing predictions. The planted score of every example is known (text: chrF
of the planted paraphrase, computed here with sacrebleu directly), so the measured per-task score
must equal the planted mean, lie within its interval, and the decision must follow the rule.
"""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner
from sacrebleu.metrics import CHRF

from pipeline.cli import cli
from pipeline.evaluate import evaluate
from pipeline.evaluate.examples import read_eval_split
from pipeline.evaluate.routing import task_fingerprint
from tests.planted_eval import break_sql, drop_fields, equivalent_sql, paraphrase, wrong_label

CATEGORIES = ("billing", "shipping", "refund", "account", "product", "other")
JSON_TASKS = {"ticket_classify", "invoice_extract"}
CHRF_METRIC = CHRF()

# Per truth task: what each planted candidate does to the production answers (exact counts).
PLANS: dict[str, dict[str, Any]] = {
    "close": {"ticket_classify": ("wrong_label", 0.10), "invoice_extract": ("drop_fields", 0.10, 1),
              "sql_generate": ("break_sql", "just_inside"), "text": ("paraphrase", 0.5, 3)},
    "weak": {"ticket_classify": ("wrong_label", 0.50), "invoice_extract": ("drop_fields", 0.40, 2),
             "sql_generate": ("break_sql", 0.30), "text": ("paraphrase", 1.0, 2), "missing": ("product_qa", 3)},
    "rerun": {"text": ("paraphrase", 1.0, 4)},  # the production model re-asked: the baseline for free text
}


@pytest.fixture(scope="module")
def workdir(sample_run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("eval_sample") / "wd"
    shutil.copytree(sample_run.workdir, out)
    return out


@pytest.fixture(scope="module")
def planted(workdir: Path, sample_truth_requests: dict[str, dict], tmp_path_factory: pytest.TempPathFactory):
    """{candidate: (predictions path, {example_id: planted score})}."""
    return plant_candidates(read_eval_split(workdir), sample_truth_requests, tmp_path_factory.mktemp("predictions"))


def plant_candidates(split, truth: dict[str, dict], folder: Path) -> dict[str, tuple[Path, dict[str, float]]]:
    """Write one predictions file per planted candidate; return it with each example's planted score."""
    sample_truth_requests = truth
    out = {}
    for name, plan in PLANS.items():
        rng = random.Random(f"plant/{name}")
        by_truth: dict[str, list] = {}
        for ex in split.examples:
            by_truth.setdefault(sample_truth_requests[ex.request_id]["task_type"], []).append(ex)
        lines, expected = [], {}
        for truth_task, exs in sorted(by_truth.items()):
            step = plan.get(truth_task) or (plan.get("text") if truth_task not in JSON_TASKS | {"sql_generate"} else None)
            chosen: set[str] = set()
            if step is not None:
                rate = step[1]
                if rate == "just_inside":
                    k = broken_just_inside(len(exs))
                else:
                    k = rate if isinstance(rate, int) else round(rate * len(exs))
                chosen = {ex.example_id for ex in rng.sample(exs, k)}
            missing = set()
            if "missing" in plan and plan["missing"][0] == truth_task:
                missing = {ex.example_id for ex in exs[: plan["missing"][1]]}
            for i, ex in enumerate(exs):
                ref = ex.reference.content or ""
                answer, score = ref, 1.0
                if truth_task == "sql_generate":
                    answer = equivalent_sql(ref)  # every answer rewritten; still equivalent
                if ex.example_id in chosen:
                    kind = step[0]
                    if kind == "wrong_label":
                        answer, score = wrong_label(ref, "category", CATEGORIES), 4 / 5
                    elif kind == "drop_fields":
                        answer, score = drop_fields(ref, step[2])
                    elif kind == "break_sql":
                        answer, score = break_sql(ref, i % 2), 0.0
                    elif kind == "paraphrase":
                        answer = paraphrase(ref, step[2], seed=hash_seed(ex.example_id))
                        score = CHRF_METRIC.sentence_score(answer, [ref]).score / 100
                elif truth_task not in JSON_TASKS | {"sql_generate"}:
                    score = CHRF_METRIC.sentence_score(answer, [ref]).score / 100  # identical text
                if ex.example_id in missing:
                    expected[ex.example_id] = 0.0
                    continue
                expected[ex.example_id] = score
                lines.append(json.dumps({"id": ex.example_id, "answer": answer}))
        path = folder / f"{name}.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        out[name] = (path, expected)
    return out


def broken_just_inside(n: int, margin: float = 0.05) -> int:
    """The most broken answers of n that keep the score within the default margin (1 of 22, 3 of 66)."""
    return math.ceil(margin * n) - 1


def sql_count(split, truth: dict[str, dict]) -> int:
    return sum(truth[ex.request_id]["task_type"] == "sql_generate" for ex in split.examples)


def hash_seed(text: str) -> int:
    return int(text[3:11], 16)


def expected_by_task(split, expected: dict[str, float]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for ex in split.examples:
        out.setdefault(ex.task_type, []).append(expected[ex.example_id])
    return out


def truth_kinds(split, truth: dict[str, dict]) -> dict[str, str]:
    kinds = {}
    for ex in split.examples:
        t = truth[ex.request_id]["task_type"]
        kinds.setdefault(ex.task_type, "json" if t in JSON_TASKS else "sql" if t == "sql_generate" else "text")
    return kinds


def test_planted_candidates_measure_their_planted_scores(workdir, planted, sample_truth_requests) -> None:
    split = read_eval_split(workdir)
    kinds = truth_kinds(split, sample_truth_requests)
    for name in ("close", "weak"):
        path, expected = planted[name]
        result = evaluate(workdir, name, predictions=path)
        by_task = expected_by_task(split, expected)
        tasks = {t["task_type"]: t for t in result.summary["tasks"]}
        assert set(tasks) == set(by_task)
        for task, values in by_task.items():
            t = tasks[task]
            planted_score = sum(values) / len(values)
            assert t["kind"] == kinds[task], (name, task, t["kind_basis"])
            assert t["n"] == len(values)
            assert t["score"] == pytest.approx(planted_score, abs=1e-9), (name, task)
            assert t["ci_low"] <= planted_score <= t["ci_high"], (name, task)
            if t["kind"] == "text":
                assert t["decision"] == "api" and t["delta"] is None
                assert ("baseline" in t["reason"]) == (len(values) >= 20), t["reason"]
            else:
                inside = len(values) >= 20 and planted_score - 1.0 >= -0.05
                assert t["decision"] == ("candidate" if inside else "api"), (name, task, planted_score)
        assert result.summary["examples"]["missing"] == (3 if name == "weak" else 0)


def test_close_candidate_decisions_and_bootstrap_width(workdir, planted, sample_truth_requests) -> None:
    path, _ = planted["close"]
    summary = evaluate(workdir, "close", predictions=path).summary
    split = read_eval_split(workdir)
    kinds = truth_kinds(split, sample_truth_requests)
    tasks = {t["task_type"]: t for t in summary["tasks"]}
    decisions = {kinds[t]: [] for t in tasks}
    for t in tasks.values():
        decisions[t["kind"]].append(t["decision"])
    # JSON (10% wrong category: 0.98; 10% one field dropped: 0.983) and SQL (k of n broken with k/n
    # just under the 5% margin, every other answer an equivalent rewrite) are within the margin;
    # text has no baseline.
    assert decisions["json"] == ["candidate", "candidate"], decisions
    assert decisions["sql"] == ["candidate"]
    assert set(decisions["text"]) == {"api"}
    sql = next(t for t in tasks.values() if t["kind"] == "sql")
    n = sql_count(split, sample_truth_requests)
    k = broken_just_inside(n)
    assert n >= 20 and sql["n"] == n and sql["score"] == pytest.approx((n - k) / n)
    details = sql["metrics"]["details"]  # break_sql alternates an unparseable and a wrong statement
    assert set(details) <= {"sql_unparseable", "sql_not_equivalent"} and sum(details.values()) == k
    # The low end of a 0/1 mean's percentile bootstrap sits about 1.96 sd below it (discrete: +-0.03).
    p = k / n
    assert sql["ci_high"] >= sql["score"]
    assert abs(sql["ci_low"] - ((n - k) / n - 1.96 * math.sqrt(p * (1 - p) / n))) <= 0.03
    # k/n just under the margin: the decision sits just inside both thresholds, and its interval
    # straddles the margin.
    assert sql["uncertain"] is True


@pytest.mark.parametrize(("threshold", "side", "decision"), [
    ("min_examples", 0, "candidate"), ("min_examples", 1, "api"),
    ("margin", +0.0005, "candidate"), ("margin", -0.0005, "api"),
])
def test_sql_thresholds_both_sides(workdir, planted, sample_truth_requests, threshold, side, decision) -> None:
    path, _ = planted["close"]
    n = sql_count(read_eval_split(workdir), sample_truth_requests)
    k = broken_just_inside(n)
    overrides = {"min_examples": n + side} if threshold == "min_examples" else {"margin": k / n + side}
    summary = evaluate(workdir, "close", predictions=path, config={"eval": overrides}).summary
    sql = next(t for t in summary["tasks"] if t["kind"] == "sql")
    assert sql["decision"] == decision, sql["reason"]


def test_classification_override_reads_the_label_field(workdir, planted, sample_truth_requests) -> None:
    path, expected = planted["close"]
    split = read_eval_split(workdir)
    ticket = {ex.task_type for ex in split.examples if sample_truth_requests[ex.request_id]["task_type"] == "ticket_classify"}
    (task,) = ticket
    config = {"eval": {"tasks": {task: {"kind": "classification", "label_field": "category"}}}}
    summary = evaluate(workdir, "close-labels", predictions=path, config=config).summary
    t = next(t for t in summary["tasks"] if t["task_type"] == task)
    n = t["n"]
    wrong = round(0.10 * n)
    assert t["kind"] == "classification" and t["kind_basis"] == "config"
    assert t["score"] == pytest.approx((n - wrong) / n)
    assert t["decision"] == "api"  # 10% wrong labels: 0.9, beyond the 5% margin
    assert t["metrics"]["details"] == {"label_mismatch": wrong}


def test_text_decisions_against_a_baseline_candidate(workdir, planted) -> None:
    split = read_eval_split(workdir)
    evaluate(workdir, "rerun", predictions=planted["rerun"][0])
    base = expected_by_task(split, planted["rerun"][1])
    for name in ("close", "weak"):
        summary = evaluate(workdir, name, predictions=planted[name][0], baseline="rerun").summary
        mine = expected_by_task(split, planted[name][1])
        for t in summary["tasks"]:
            delta = sum(mine[t["task_type"]]) / t["n"] - sum(base[t["task_type"]]) / t["n"]
            assert t["delta"] == pytest.approx(delta, abs=1e-9)
            assert t["delta_ci_low"] <= delta <= t["delta_ci_high"]
            inside = t["n"] >= 20 and delta >= -0.05
            assert t["decision"] == ("candidate" if inside else "api"), (name, t["task_type"], delta)
            if t["kind"] == "text" and t["n"] >= 20:
                # close: half paraphrased every 3rd word, against a re-run paraphrased every 4th word;
                # weak: every 2nd word replaced everywhere.
                assert t["decision"] == ("candidate" if name == "close" else "api")


def test_sample_eval_split_against_a_local_endpoint(workdir, planted, allow_only, monkeypatch) -> None:
    """The `close` candidate served by an OpenAI-compatible server on 127.0.0.1 (with 429s, 503s and
    slow answers) measures exactly what its predictions file measured."""
    from tests.planted_eval import PlantedServer

    split = read_eval_split(workdir)
    answers = {json.loads(line)["id"]: json.loads(line)["answer"]
               for line in planted["close"][0].read_text(encoding="utf-8").splitlines()}
    examples = [{"example_id": ex.example_id, "messages": [*ex.messages, {"role": "assistant"}]} for ex in split.examples]
    allowed, attempts = allow_only
    monkeypatch.setenv("LOGAUDIT_TEST_KEY", "sk-sample-test")
    config = {"eval": {"concurrency": 4, "timeout_s": 0.5, "backoff_initial_s": 0.01, "backoff_max_s": 0.05,
                       "api_key_env": "LOGAUDIT_TEST_KEY"}}
    with PlantedServer(examples, {i: {"content": a} for i, a in answers.items()}) as server:
        allowed.append(server.address)
        runner = CliRunner(env={"COLUMNS": "80"})
        cfg = workdir / "eval-endpoint.toml"
        cfg.write_text("[eval]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in config["eval"].items()) + "\n",
                       encoding="utf-8")
        result = runner.invoke(cli, ["eval", str(workdir), "--candidate", "close-served", "--endpoint", server.url,
                                     "--model", "close-1", "--config", str(cfg), "--no-progress"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert sum(server.answered.values()) == len(split.examples)
    served = json.loads((workdir / "eval" / "close-served" / "summary.json").read_text(encoding="utf-8"))
    from_file = evaluate(workdir, "close", predictions=planted["close"][0]).summary
    assert [(t["task_type"], t["score"], t["decision"]) for t in served["tasks"]] == \
           [(t["task_type"], t["score"], t["decision"]) for t in from_file["tasks"]]
    assert {tuple(a[:2]) for a in attempts} == {server.address}


def test_routing_table_and_fingerprint_rule(workdir, planted) -> None:
    summary = evaluate(workdir, "close", predictions=planted["close"][0]).summary
    out = workdir / "eval" / "close"
    table = json.loads((out / "routing.json").read_text(encoding="utf-8"))
    routed = {r["task_type"] for r in table["routes"] if r["target"] == "candidate"}
    assert routed == {t["task_type"] for t in summary["tasks"] if t["decision"] == "candidate"}
    assert sorted(routed) == summary["routing"]["candidate_tasks"]
    # The documented rule reproduces the audit's fingerprint of every eval example's system prompt,
    # and each example's fingerprint is listed under its own task type.
    con = duckdb.connect()
    labels = dict(con.sql(f"SELECT request_id, system_fp FROM '{workdir}/audit/request_labels.parquet'").fetchall())
    routes = {r["task_type"]: r for r in table["routes"]}
    split = read_eval_split(workdir)
    for ex in split.examples:
        fp = task_fingerprint(ex.messages[0]["content"])
        assert fp == labels[ex.request_id], ex.example_id
        assert fp in routes[ex.task_type]["system_fingerprints"]
    owners: dict[str, set[str]] = {}
    for r in table["routes"]:
        for fp in r["system_fingerprints"]:
            owners.setdefault(fp, set()).add(r["task_type"])
    assert all(len(v) == 1 for v in owners.values()), owners  # one fingerprint -> one route
    assert "md5" in table["fingerprint_rule"].lower()
    import yaml

    snippet = yaml.safe_load((out / "litellm_router.yaml").read_text(encoding="utf-8"))
    assert snippet["router_settings"]["enable_tag_filtering"] is True
    tags = {tag for d in snippet["model_list"] for tag in d["litellm_params"]["tags"]}
    assert tags == {f"logaudit-{t}" for t in routed} | {"default"}


def test_report_shows_every_candidate(workdir, planted) -> None:
    import jsonschema

    from pipeline.report import render_report
    from schemas.report import json_schema

    for name in ("close", "weak"):
        evaluate(workdir, name, predictions=planted[name][0])
    result = render_report(workdir)
    report = json.loads((workdir / "report" / "report.json").read_text(encoding="utf-8"))
    jsonschema.validate(report, json_schema())
    names = [e["candidate"] for e in report["evaluations"]]
    assert {"close", "weak"} <= set(names)
    close = next(e for e in report["evaluations"] if e["candidate"] == "close")
    summary = json.loads((workdir / "eval" / "close" / "summary.json").read_text(encoding="utf-8"))
    assert [t["decision"] for t in close["tasks"]] == [t["decision"] for t in summary["tasks"]]
    savings = {t["id"]: t["projected_monthly_savings"] for t in report["task_types"]}
    assert all(t["projected_monthly_savings"] == savings.get(t["task_type"]) for t in close["tasks"])
    md = result.paths["md"].read_text(encoding="utf-8")
    assert "## Candidate models on the eval split" in md and "### `close`" in md and "### `weak`" in md
    assert "Candidate models on the eval split" in result.paths["html"].read_text(encoding="utf-8")


def test_cli_eval_with_predictions(workdir, planted) -> None:
    runner = CliRunner(env={"COLUMNS": "80"})
    result = runner.invoke(cli, ["eval", str(workdir), "--candidate", "cli-close", "--predictions",
                                 str(planted["close"][0])], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Eval of `cli-close` written to {workdir}/eval/cli-close/")
    assert (workdir / "eval" / "cli-close" / "scores.parquet").is_file()
    prompts = runner.invoke(cli, ["eval", str(workdir), "--prompts"], catch_exceptions=False)
    assert prompts.output == f"Eval prompts written to {workdir}/eval/prompts.jsonl\n"
    first = json.loads((workdir / "eval" / "prompts.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert set(first) >= {"id", "task_type", "messages"} and first["messages"][-1]["role"] != "assistant"


def test_cli_eval_errors(workdir, tmp_path: Path) -> None:
    runner = CliRunner(env={"COLUMNS": "80"})
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "nope", "answer": "x"}\n', encoding="utf-8")
    result = runner.invoke(cli, ["eval", str(workdir), "--candidate", "c", "--predictions", str(bad)])
    assert result.exit_code == 1
    assert result.output == (f"Error: No line of `{bad}` names an eval example (1 unknown ids, e.g. nope). Ids are the "
                             "example_id values of `WORKDIR/eval/prompts.jsonl` (`logaudit eval WORKDIR --prompts`).\n")
    assert not (workdir / "eval" / "c").exists()
    result = runner.invoke(cli, ["eval", str(workdir), "--candidate", "c"])
    assert result.output == "Error: Give exactly one of --predictions FILE or --endpoint URL (with --model).\n"
    result = runner.invoke(cli, ["eval", str(workdir), "--candidate", "../x", "--predictions", str(bad)])
    assert result.exit_code == 1 and "must be 1-100 letters" in result.output
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": 1}\n', encoding="utf-8")
    result = runner.invoke(cli, ["eval", str(workdir), "--candidate", "c", "--predictions", str(broken)])
    assert result.output == f"Error: {broken}:1: each line needs a string `id` (the example_id of an eval example).\n"
