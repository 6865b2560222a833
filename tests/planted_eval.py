"""Planted candidates for `logaudit eval`: production answers degraded in known ways, and a small
hand-built eval split. Shares no code with `pipeline/evaluate`: expected scores are computed here
from the planted degradations (field counts, exact counts of broken answers)."""

from __future__ import annotations

import json
import random
import re
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
    (dataset / "manifest.json").write_text(json.dumps({"config": {"format": fmt}}), encoding="utf-8")


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
