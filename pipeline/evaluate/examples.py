"""The eval split as the dataset stage wrote it: prompts, production answers and task types.

`lineage.parquet` names every eval example (example_id, task type, final request) and where its
record is (file, line); the record, in the dataset's target format, holds the conversation whose
last assistant turn is the production answer: the reference a candidate is scored against.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import EvalError
from pipeline.evaluate.sqlfiles import fetch
from pipeline.workdir.paths import workdir_paths


@dataclass(frozen=True)
class Answer:
    """One assistant answer: text and/or tool calls (`{"name", "arguments"}`, arguments as JSON text)."""

    content: str | None = None
    tool_calls: tuple[dict[str, str], ...] = ()

    def as_text(self) -> str:
        if self.tool_calls:
            calls = [{"name": c["name"], "arguments": c["arguments"]} for c in self.tool_calls]
            return json.dumps({"content": self.content, "tool_calls": calls}, ensure_ascii=False)
        return self.content or ""

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Answer:
        """An OpenAI-shaped assistant message (`content`, `tool_calls[].function`)."""
        calls = []
        for c in message.get("tool_calls") or []:
            fn = c.get("function", c) if isinstance(c, dict) else {}
            args = fn.get("arguments")
            calls.append({"name": str(fn.get("name") or ""),
                          "arguments": args if isinstance(args, str) else json.dumps(args or {})})
        content = message.get("content")
        if isinstance(content, list):  # content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return cls(content if isinstance(content, str) else None, tuple(calls))


@dataclass(frozen=True)
class EvalExample:
    example_id: str
    request_id: str
    task_type: str
    messages: list[dict[str, Any]]
    """The prompt: OpenAI chat messages up to (not including) the production answer."""
    reference: Answer
    tools: list[dict[str, Any]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def prompt_sha(self) -> str:
        """Identity of the prompt, so a cached answer to an older version of the example is not reused."""
        body = json.dumps({"messages": self.messages, "tools": self.tools}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class EvalSplit:
    examples: list[EvalExample]
    format: str
    fingerprint: str
    """sha256 of the lineage rows and records read: a changed split is visible in summary.json."""


def read_eval_split(workdir: Path) -> EvalSplit:
    """Every eval example of `WORKDIR/dataset/`, in file and line order."""
    paths = workdir_paths(workdir)
    dataset, lineage = paths.dataset_dir, paths.lineage
    if not lineage.is_file():
        raise EvalError(f"No eval split in `{workdir}`: `{lineage}` not found. Run `logaudit dataset {workdir}` first.")
    manifest = _manifest(paths.dataset_manifest)
    fmt = str((manifest.get("config") or {}).get("format") or "openai")
    if fmt not in _PARSERS:
        raise EvalError(f"`{dataset}/manifest.json` names format `{fmt}`; eval reads {', '.join(sorted(_PARSERS))}.")
    rows = fetch("eval_examples", lineage=str(lineage))
    if not rows:
        raise EvalError(f"The eval split in `{dataset}` is empty (no lineage row with split = eval).")
    digest = hashlib.sha256()
    examples: list[EvalExample] = []
    by_file: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_file.setdefault(r["file"], []).append(r)
    for name, file_rows in by_file.items():
        lines = _read_lines(dataset / name)
        for r in file_rows:
            line_no = int(r["line"])
            if not 1 <= line_no <= len(lines):
                raise EvalError(f"`{dataset / name}` has {len(lines)} lines; lineage points at line {line_no} "
                                f"for `{r['example_id']}`. Rebuild the dataset.")
            raw = lines[line_no - 1]
            digest.update(f"{r['example_id']}\t{r['task_type']}\t".encode() + raw)
            try:
                record = json.loads(raw)
                messages, tools = _PARSERS[fmt](record)
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                raise EvalError(f"{dataset / name}:{line_no}: not a {fmt} record with a final assistant turn ({e}).") from e
            last = messages[-1]
            prompt = messages[:-1]
            if last.get("role") != "assistant" or not prompt:
                raise EvalError(f"{dataset / name}:{line_no}: the record does not end with an assistant answer.")
            examples.append(EvalExample(
                example_id=r["example_id"], request_id=r["request_id"], task_type=r["task_type"] or "unlabeled",
                messages=prompt, reference=Answer.from_message(last), tools=tools,
            ))
    return EvalSplit(examples, fmt, digest.hexdigest())


def _manifest(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as e:
        raise EvalError(f"`{path}` is not valid JSON ({e}). Rebuild the dataset.") from e


def _read_lines(path: Path) -> list[bytes]:
    try:
        return path.read_bytes().splitlines()
    except FileNotFoundError as e:
        raise EvalError(f"`{path}` (named in lineage.parquet) is missing. Rebuild the dataset.") from e


# --- target formats -> OpenAI chat messages ----------------------------------------------------


def _openai(record: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    # `weight` is a fine-tuning field, not part of a chat request.
    messages = [{k: v for k, v in m.items() if k != "weight"} for m in record["messages"]]
    return messages, record.get("tools")


def _anthropic(record: dict[str, Any]) -> tuple[list[dict[str, Any]], None]:
    system = [{"role": "system", "content": record["system"]}] if record.get("system") else []
    return system + [{"role": m["role"], "content": m["content"]} for m in record["messages"]], None


_SHAREGPT_ROLES = {"system": "system", "human": "user", "gpt": "assistant"}


def _sharegpt(record: dict[str, Any]) -> tuple[list[dict[str, Any]], None]:
    return [{"role": _SHAREGPT_ROLES[t["from"]], "content": t["value"]} for t in record["conversations"]], None


_PARSERS = {"openai": _openai, "trl": _openai, "anthropic": _anthropic, "sharegpt": _sharegpt}
