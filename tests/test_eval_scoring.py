"""The eval scorers, each on both sides: what must still count as a match and what must not."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.evaluate.examples import Answer
from pipeline.evaluate.scoring import score_answer, score_json, score_label, score_sql, score_text
from pipeline.evaluate.stats import decide, interval

SQL = "```sql\nselect c.region, sum(o.total) as t\nfrom orders o\njoin customers c on c.id = o.customer_id\n" \
      "where o.status = 'open' and o.total > 5\ngroup by c.region\nlimit 5;\n```\nthis query sums the totals."


@pytest.mark.parametrize(("answer", "score"), [
    ("positive", 1.0), ("Positive.", 1.0), ('"positive"', 1.0), ("  POSITIVE\n", 1.0),
    ("negative", 0.0), ("positive review", 0.0), ("", 0.0),
])
def test_label_match(answer: str, score: float) -> None:
    assert score_label("positive", answer).score == score


def test_label_field_of_a_json_answer() -> None:
    ref = json.dumps({"category": "billing", "priority": "low"})
    assert score_label(ref, json.dumps({"category": "Billing", "priority": "high"}), "category").score == 1.0
    assert score_label(ref, json.dumps({"category": "refund", "priority": "low"}), "category").score == 0.0
    assert score_label(ref, "not json", "category").detail == "no_label"
    assert score_label("plain text", "x", "category").score is None


def test_json_fields() -> None:
    ref = json.dumps({"vendor": "acme", "total": 12.5, "currency": "USD", "items": [1, 2]})
    assert score_json(ref, json.dumps({"items": [1, 2], "currency": "usd", "total": 12.50, "vendor": "ACME "})).score == 1.0
    assert score_json(ref, "```json\n" + ref + "\n```").score == 1.0
    dropped = score_json(ref, json.dumps({"vendor": "acme", "total": 12.5, "currency": "USD"}))
    assert dropped.score == 0.75 and dropped.keys_match is False and dropped.fields_matched == 3
    extra = score_json(ref, json.dumps({"vendor": "acme", "total": 12.5, "currency": "USD", "items": [1, 2], "x": 1}))
    assert extra.score == 0.8  # an extra field costs like a missing one
    wrong = score_json(ref, json.dumps({"vendor": "acme", "total": 12.51, "currency": "USD", "items": [2, 1]}))
    assert wrong.score == 0.5 and wrong.keys_match is True
    invalid = score_json(ref, '{"vendor": "acme", "total": 12.5')
    assert invalid.score == 0.0 and invalid.json_valid is False
    assert score_json(ref, json.dumps({"vendor": "acme", "total": True, "currency": "USD", "items": [1, 2]})).score == 0.75
    assert score_json("not json", ref).score is None


@pytest.mark.parametrize("answer", [
    SQL,
    "SELECT C.REGION, SUM(O.TOTAL) AS T FROM ORDERS AS O INNER JOIN CUSTOMERS AS C ON O.CUSTOMER_ID = C.ID "
    "WHERE O.TOTAL > 5 AND O.STATUS = 'open' GROUP BY C.REGION LIMIT 5",
    "```\nselect c.region, sum(o.total) as t from orders o join customers c on c.id = o.customer_id "
    "where o.status = 'open' and 5 < o.total group by c.region limit 5\n```",
])
def test_sql_equivalent(answer: str) -> None:
    assert score_sql(SQL, answer).score == 1.0


@pytest.mark.parametrize(("answer", "detail"), [
    (SQL.replace("'open'", "'OPEN'"), "sql_not_equivalent"),  # a literal is data: case matters
    (SQL.replace("limit 5", "limit 6"), "sql_not_equivalent"),
    (SQL.replace("join customers", "left join customers"), "sql_not_equivalent"),
    (SQL.replace("group by c.region\n", ""), "sql_not_equivalent"),
    ("```sql\nselect c.region, sum(o.total) as t\nfrom\n```", "sql_unparseable"),
    ("the query sums the totals per region", "no_sql"),
])
def test_sql_not_equivalent(answer: str, detail: str) -> None:
    s = score_sql(SQL, answer)
    assert (s.score, s.detail) == (0.0, detail)


def test_tool_calls() -> None:
    def call(name: str, **args: object) -> dict[str, str]:
        return {"name": name, "arguments": json.dumps(args)}

    ref = Answer(None, (call("lookup", order_id="A1", full=True),))
    assert score_answer("text", ref, Answer(None, (call("lookup", full=True, order_id="A1"),)))[1].score == 1.0
    half = score_answer("text", ref, Answer(None, (call("lookup", order_id="A2", full=True),)))
    assert half == ("tool_call", half[1]) and half[1].score == 0.5 and half[1].name_match is True
    assert score_answer("text", ref, Answer(None, (call("cancel", order_id="A1", full=True),)))[1].score == 0.0
    assert score_answer("text", ref, Answer("I would look it up"))[1].detail == "no_tool_call"
    two = score_answer("text", ref, Answer(None, (call("lookup", order_id="A1", full=True), call("cancel"))))[1]
    assert two.score == 0.5 and two.name_match is False  # an extra call halves the score


def test_text_chrf_orders_answers_by_closeness() -> None:
    ref = "the parcel left the warehouse on monday and should arrive by thursday afternoon"
    same = score_text(ref, ref).score
    close = score_text(ref, ref.replace("thursday", "friday")).score
    far = score_text(ref, "please contact our support team for billing questions").score
    assert same == 1.0 and 0.7 < close < 1.0 and far < 0.3
    assert score_text(ref, "").score == 0.0 and score_text("", "x").score is None


def test_interval_and_decision_rule() -> None:
    values = np.array([1.0] * 90 + [0.0] * 10)
    low, high = interval(values, 2000, 1)
    assert low < 0.9 < high and high - low == pytest.approx(2 * 1.96 * (0.09 / 100) ** 0.5, rel=0.2)
    assert interval(np.array([]), 100, 1) == (None, None)
    assert decide(30, -0.049, -0.1, 0.0, 0.05, 20, "json").decision == "candidate"
    assert decide(30, -0.051, -0.1, 0.0, 0.05, 20, "json").decision == "api"
    assert decide(19, 0.0, 0.0, 0.0, 0.05, 20, "json").decision == "api"
    assert decide(30, None, None, None, 0.05, 20, "text").decision == "api"
    assert decide(30, -0.01, -0.02, 0.0, 0.05, 20, "json").uncertain is False
    assert decide(30, -0.01, -0.06, 0.0, 0.05, 20, "json").uncertain is True


def test_routing_keeps_unroutable_task_types_on_the_api() -> None:
    from pipeline.evaluate.routing import routing_table

    def task(name: str, decision: str) -> dict:
        return {"task_type": name, "label": name, "decision": decision, "reason": "r", "score": 1.0, "delta": 0.0, "n": 30}

    fps = {"a": {"system": ["f1", "f2"], "tools": []}, "b": {"system": ["f3"], "tools": []},
           "c": {"system": ["f3"], "tools": []}}
    table = routing_table("cand", "m", [task("a", "candidate"), task("b", "candidate"), task("c", "api"),
                                        task("d", "candidate")], fps, {})
    targets = {r["task_type"]: (r["target"], r["reason"]) for r in table["routes"]}
    assert targets["a"] == ("candidate", "r")
    assert targets["b"][0] == "api" and "also serves c" in targets["b"][1]
    assert targets["d"] == ("api", "no system-prompt fingerprint to route on")
    assert table["fingerprint_rule"].startswith("Fingerprint rule")


def test_eval_schema_doc_is_generated() -> None:
    from pathlib import Path

    from schemas import eval as eval_schema

    root = Path(__file__).resolve().parent.parent
    assert (root / "schemas" / "eval.md").read_text(encoding="utf-8") == eval_schema.markdown()


def test_readme_eval_config_example_loads() -> None:
    import tomllib
    from pathlib import Path

    from pipeline.evaluate.config import EvalConfig

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    block = next(b.split("\n", 1)[1] for b in readme.split("```")[1::2] if b.startswith("toml\n[eval]"))
    cfg = EvalConfig.from_toml(tomllib.loads(block))
    assert cfg.baselines["text"] == 0.55 and cfg.baselines["json"] == 1.0
    assert cfg.task("task_02") == {"kind": "classification", "label_field": "category"}
