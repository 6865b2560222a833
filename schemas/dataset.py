"""Contracts of the dataset stage's outputs (`WORKDIR/dataset/`).

- `train.jsonl` / `eval.jsonl` (or `tasks/<task>/{train,eval}.jsonl` with `--per-task`): one record per
  line, strictly in the target format (`OPENAI_RECORD` below for the default `--format openai`);
  nothing of ours is added to the records, so lineage lives in `lineage.parquet`.
- `lineage.parquet`: `LINEAGE_SCHEMA`, one row per written example (kind = example) and one per
  dropped request (kind = dropped). Every request of the store appears exactly once, either in the
  `source_request_ids` of an example row or as the `request_id` of a dropped row.
- `manifest.json`: counts per stage and filter (`counts.requests_in = counts.requests_kept +
  counts.requests_dropped`), per task type, tokens, training-cost estimate (`estimate`: USD and
  the reporting currency, `approximate` and its `basis`), `rejected_turns` (a weight-0 turn is never a
  target: formats without per-turn weights drop the example, reason `rejected_turn`), dedup and split
  statistics, the leakage check, validation results, seed, config and input fingerprints.
- `dataset_card.md`: the same for people.

`python -m schemas.dataset` regenerates `schemas/dataset.md`.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

_LINEAGE_FIELDS: list[tuple[str, pa.DataType, str]] = [
    ("kind", pa.string(), "example (written to a JSONL file) | dropped (a request that is in no example)"),
    ("example_id", pa.string(), "ex_<xxh3 of the final request id>; null for dropped rows."),
    ("split", pa.string(), "train | eval; null for dropped rows."),
    ("task_type", pa.string(), "Task type from audit/request_labels.parquet, else `unlabeled`."),
    ("request_id", pa.string(), "The example's final request (the last conversation state), or the dropped request."),
    ("source_request_ids", pa.list_(pa.string()), "Every request the example came from, in conversation order."),
    ("reason", pa.string(), "Dropped rows: the filter that dropped the request (see manifest `filters_order`), "
                            "or duplicate / near_duplicate."),
    ("detail", pa.string(), "Why, where a filter says more (token count, tool problem, PII kinds, Jaccard)."),
    ("duplicate_of", pa.string(), "Dropped duplicates: the example_id kept in their place."),
    ("file", pa.string(), "Example rows: JSONL file relative to the dataset folder."),
    ("line", pa.int64(), "Example rows: 1-based line in that file."),
    ("tokens", pa.int64(), "Tokens of the example (OpenAI cookbook counting, target tokenizer)."),
    ("assistant_tokens", pa.int64(), "Tokens of the assistant turns."),
    ("redactions", pa.int64(), "Secrets/PII placeholders inserted into the example."),
]
LINEAGE_SCHEMA = pa.schema([pa.field(n, t) for n, t, _ in _LINEAGE_FIELDS])

# The default output record (OpenAI chat fine-tuning), as written by pipeline/dataset/targets.py.
OPENAI_RECORD = """{"messages": [
   {"role": "system", "content": str}?,                                  # the request's system prompt
   {"role": "user", "content": str, "name": str?},
   {"role": "assistant", "content": str, "weight": 0?},                  # weight 0: earlier turn whose own
   {"role": "assistant", "content": str?, "tool_calls": [               #   request was rejected (context only)
       {"id": str, "type": "function", "function": {"name": str, "arguments": str}}]},
   {"role": "tool", "tool_call_id": str, "content": str},
   ...,
   {"role": "assistant", ...}],                                          # always last: the logged response
 "tools": [{"type": "function", "function": {"name": str, "description": str?, "parameters": {...}}}]?}"""


def markdown() -> str:
    lines = [
        "# Dataset outputs (`WORKDIR/dataset/`)",
        "",
        "Generated from `schemas/dataset.py` by `python -m schemas.dataset`; do not edit by hand.",
        "",
        __doc__.split("\n\n", 1)[1].rsplit("\n\n", 1)[0],
        "",
        "## `lineage.parquet`",
        "",
        "| column | type | meaning |",
        "|---|---|---|",
    ]
    lines += [f"| `{n}` | `{t}` | {d} |" for n, t, d in _LINEAGE_FIELDS]
    lines += ["", "## OpenAI record (`--format openai`, the default)", "", "```", OPENAI_RECORD, "```", ""]
    return "\n".join(lines)


def write_docs(folder: Path | None = None) -> None:
    ((folder or Path(__file__).parent) / "dataset.md").write_text(markdown(), encoding="utf-8")


if __name__ == "__main__":
    write_docs()
