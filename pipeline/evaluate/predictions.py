"""`--predictions FILE`: a JSONL of `{"id", "answer" | "messages"}` per eval example, as any training
or inference stack can write it.

- `id`: the example_id (`WORKDIR/eval/prompts.jsonl`, `lineage.parquet`) or the example's request_id.
- `answer`: the answer text, or an OpenAI-shaped assistant message (`content`, `tool_calls`).
- `messages`: the whole conversation; its last assistant message is the answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import EvalError
from pipeline.evaluate.examples import Answer, EvalExample


@dataclass(frozen=True)
class Predictions:
    answers: dict[str, Answer]
    """example_id -> answer."""
    unknown_ids: list[str] = field(default_factory=list)
    """Ids in the file that name no eval example (first few kept)."""
    unknown_count: int = 0


def read_predictions(path: Path, examples: list[EvalExample]) -> Predictions:
    by_id = {ex.example_id: ex.example_id for ex in examples}
    by_id.update({ex.request_id: ex.example_id for ex in examples})
    answers: dict[str, Answer] = {}
    unknown: list[str] = []
    unknown_count = 0
    if not Path(path).is_file():
        raise EvalError(f"Predictions file `{path}` does not exist.")
    with Path(path).open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise EvalError(f"{where}: not valid JSON ({e.msg}).") from e
            if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                raise EvalError(f"{where}: each line needs a string `id` (the example_id of an eval example).")
            example_id = by_id.get(record["id"])
            if example_id is None:
                unknown_count += 1
                if len(unknown) < 5:
                    unknown.append(record["id"])
                continue
            if example_id in answers:
                raise EvalError(f"{where}: a second prediction for `{record['id']}`.")
            answers[example_id] = _answer(record, where)
    if not answers:
        raise EvalError(f"No line of `{path}` names an eval example ({unknown_count} unknown ids, e.g. "
                        f"{', '.join(unknown[:3]) or 'none'}). Ids are the example_id values of "
                        f"`WORKDIR/eval/prompts.jsonl` (`logaudit eval WORKDIR --prompts`).")
    return Predictions(answers, unknown, unknown_count)


def _answer(record: dict[str, Any], where: str) -> Answer:
    if "answer" in record:
        value = record["answer"]
        if isinstance(value, str):
            return Answer(value)
        if isinstance(value, dict):
            return Answer.from_message(value)
        if value is None:
            return Answer(None)
        raise EvalError(f"{where}: `answer` must be a string or an assistant message object.")
    messages = record.get("messages")
    if isinstance(messages, list):
        for m in reversed(messages):
            if isinstance(m, dict) and m.get("role") == "assistant":
                return Answer.from_message(m)
        raise EvalError(f"{where}: `messages` holds no assistant message.")
    raise EvalError(f"{where}: needs `answer` (text or assistant message) or `messages`.")
