"""The dataset stage's bucket-task shortcuts against plain references on planted inputs.

- Validation runs in the bucket tasks (on each record parsed back from its line) and the driver
  counts the errors of the written records: the manifest's `validation` must equal the target
  validator run over the written files, line by line, as the driver used to do.
- The session collapse's message digest is a length-prefixed encoding instead of a JSON dump:
  two messages must get the same digest exactly when their JSON digests were equal.
- Record lines are written by orjson where it prints exactly what the standard library prints.
- The JSONL files are written by tasks, a bucket each, at the records' byte offsets.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xxhash

from pipeline.dataset import DatasetConfig, assemble, build_dataset
from pipeline.dataset.examples import Message, _message_digest
from pipeline.dataset.filters import FILTERS
from pipeline.dataset.targets import FORMATS, dumps
from pipeline.ingest import ingest

WORDS = ["amber", "basil", "cedar", "delta", "ember", "fjord", "garnet", "harbor", "indigo", "juniper", "kelp",
         "lilac", "maple", "nectar", "onyx", "pepper", "quartz", "raven", "saffron", "tundra", "umber", "violet"]
MAX_TOKENS = 150


def _record(n: int, user: str, answer: str) -> str:
    req = {"model": "gpt-4.1-mini", "messages": [{"role": "system", "content": "Be brief."},
                                                  {"role": "user", "content": user}]}
    resp = {"id": f"chatcmpl-{n}", "object": "chat.completion", "model": "gpt-4.1-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}
    return json.dumps({"id": f"r{n:04d}", "timestamp": 1_788_000_000 + n * 60, "provider": "openai",
                       "endpoint": "/v1/chat/completions", "request": req, "response": resp})


def _words(n: int, k: int) -> str:
    # Distinct texts: no exact or near duplicate removes a planted record.
    return " ".join(f"{WORDS[(n * 7 + i * 3) % len(WORDS)]}{n}x{i}" for i in range(k))


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 valid requests, 3 with an empty user message (+ a duplicate of one), 4 far over MAX_TOKENS;
    neither filter is on."""
    root = tmp_path_factory.mktemp("validation_logs")
    lines = [_record(n, _words(n, 6), _words(n + 1000, 6)) for n in range(40)]
    lines += [_record(40 + n, "", _words(n + 2000, 6)) for n in range(3)]
    lines += [_record(50 + n, _words(n + 3000, 60), _words(n + 4000, 60)) for n in range(4)]
    # An exact duplicate of an invalid one: removed by dedup, so never written and never counted.
    lines.append(_record(60, "", _words(2000, 6)))
    (root / "logs.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    workdir = root / "work"
    ingest([str(root / "logs.jsonl")], workdir, progress=False)
    return workdir


def _reference(workdir: Path, fmt: str, max_tokens: int = MAX_TOKENS) -> dict[str, Any]:
    """The validation as the driver ran it before: every written line parsed and validated, with the
    example's token count (from lineage)."""
    lineage = pq.read_table(workdir / "dataset" / "lineage.parquet").to_pylist()
    tokens = {(r["file"], r["line"]): r["tokens"] for r in lineage if r["kind"] == "example"}
    errors: Counter[str] = Counter()
    checked = invalid = 0
    for path in sorted((workdir / "dataset").rglob("*.jsonl")):
        rel = str(path.relative_to(workdir / "dataset"))
        for line_no, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            errs = FORMATS[fmt].validate(json.loads(raw), max_tokens, tokens[(rel, line_no)])
            checked += 1
            invalid += bool(errs)
            errors.update(errs)
    return {"records_checked": checked, "invalid_records": invalid, "errors": dict(sorted(errors.items()))}


@pytest.mark.parametrize("fmt", ["openai", "trl"])
def test_validation_in_bucket_tasks_equals_validating_the_written_files(planted: Path, fmt: str) -> None:
    filters = tuple(f for f in FILTERS if f not in ("pii", "empty_prompt", "over_token_limit"))
    cfg = DatasetConfig(format=fmt, filters=filters, max_example_tokens=MAX_TOKENS, rows_per_bucket=10, workers=1)
    manifest = build_dataset(planted, cfg).manifest
    assert manifest["execution"]["buckets"] > 1
    assert manifest["validation"] == _reference(planted, fmt)
    # The planted ground truth: 3 empty user turns, 4 examples over the limit, out of 47 written.
    assert manifest["counts"]["duplicates"] == 1
    assert manifest["validation"] == {"records_checked": 47, "invalid_records": 7,
                                      "errors": {"missing_content": 3, "over_token_limit": 4}}


def test_validation_counts_nothing_when_every_record_is_valid(planted: Path) -> None:
    # The default filters drop the empty prompts; nothing is over the default limit.
    manifest = build_dataset(planted, DatasetConfig(rows_per_bucket=10, workers=1)).manifest
    assert manifest["validation"] == _reference(planted, "openai", DatasetConfig().max_example_tokens)
    assert manifest["validation"]["invalid_records"] == 0
    assert manifest["validation"]["records_checked"] == manifest["counts"]["examples_kept"] > 0


def _json_digest(m: Message) -> bytes:
    """The digest before: the JSON of (role, stripped content, tool calls)."""
    calls = [(c.get("name"), c.get("arguments")) for c in m.tool_calls or []]
    return json.dumps([m.role, (m.content or "").strip(), calls], ensure_ascii=False).encode("utf-8", "surrogatepass")


CALL = {"id": "c1", "type": "function", "name": "lookup", "arguments": '{"q": 1}'}
MESSAGES = [
    Message("user", "hello"), Message("user", "  hello\n"), Message("user", "hello "), Message("assistant", "hello"),
    Message("user", None), Message("user", ""), Message("user", "   "),
    Message("ab", "c"), Message("a", "bc"), Message("a", "b1:c"), Message("a1", ":c"), Message("user", "1:x"),
    Message("assistant", None, [CALL]), Message("assistant", None, [{**CALL, "id": "c2"}]),
    Message("assistant", "", [CALL]), Message("assistant", None, []), Message("assistant", None, None),
    Message("assistant", None, [{**CALL, "arguments": '{"q": 2}'}]), Message("assistant", '[["lookup", "{}"]]'),
    Message("user", "caf\u00e9"), Message("user", "cafe\u0301"), Message("user", "\ud800 lone"),
    Message("user", 'quote " and \\ backslash'), Message("user", "tab\there"),
]


def test_message_digest_equal_exactly_when_the_json_digest_is() -> None:
    for a in MESSAGES:
        for b in MESSAGES:
            assert (_message_digest(a) == _message_digest(b)) == (_json_digest(a) == _json_digest(b)), (a, b)


def _json_line(record: dict[str, Any]) -> str:
    """The line as the standard library writes it (the reference)."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def test_record_lines_equal_the_standard_library_for_every_code_point() -> None:
    chars = [chr(c) for c in [*range(0xD800), *range(0xE000, 0x110000)]]
    for start in range(0, len(chars), 4096):
        text = "".join(chars[start:start + 4096])
        record = {"messages": [{"role": "user", "content": text, "name": None},
                               {"role": "assistant", "content": f'"{text}\\', "weight": 0}]}
        assert dumps(record) == _json_line(record)


@pytest.mark.parametrize("record", [
    {"messages": [{"role": "assistant", "content": "", "tool_calls": [{"id": "c", "type": "function",
                   "function": {"name": "f", "arguments": "{}"}}]}], "n": [0, -1, 2**63 - 1, True, False]},
    # Floats print differently (1e-07 / 1e-7, NaN / null): a record with tools takes the standard library.
    {"messages": [], "tools": [{"type": "function", "function": {"name": "f", "parameters": {
        "minimum": 1e-07, "step": 2.5e-05, "tiny": 5e-324, "nan": float("nan")}}}]},
    {"messages": [{"role": "user", "content": "lone \ud800 surrogate"}]},  # orjson refuses it
    {"messages": [{"role": "user", "content": "x"}], "big": 2**70},  # beyond 64 bits
    {"conversations": [{"from": "human", "value": "caf\u00e9 \u2028 \x7f \x00 \x1f"}]},
])
def test_record_lines_equal_the_standard_library(record: dict[str, Any]) -> None:
    assert dumps(record) == _json_line(record)


@pytest.mark.parametrize("row_group_size", [None, 2])  # the record column read as one batch, or several
def test_bucket_records_written_at_their_offsets_by_tasks_in_any_order(tmp_path: Path, row_group_size: int | None,
                                                                      ) -> None:
    """Two buckets' records placed in two files (one skipped as a duplicate), written bucket by bucket
    in reverse order into files created at their final size: the files and the digests equal the
    plain concatenation in line order."""
    records = {1: '{"a":"caf\u00e9 \u6f22\U0001f642"}', 2: '{"b":2}', 3: '{"c":3}', (1 << 32) | 0: '{"d":"x"}', (1 << 32) | 1: '{"e":5}'}
    lines = {"train.jsonl": [(1 << 32) | 1, 1, 3], "tasks/t/eval.jsonl": [(1 << 32) | 0]}  # uid 2: a duplicate
    expected = {rel: "".join(records[u] + "\n" for u in uids).encode() for rel, uids in lines.items()}
    rels = sorted(lines)
    jobs = []
    for bucket in (0, 1):
        uids = [u for u in records if u >> 32 == bucket]
        path = tmp_path / f"bucket-{bucket}.parquet"
        pq.write_table(pa.table({"uid": pa.array(uids, pa.int64()), "record": [records[u] for u in uids]}), path,
                       row_group_size=row_group_size)
        where = [(u, rel, len(b"".join(records[v].encode() + b"\n" for v in lines[rel][:lines[rel].index(u)])))
                 for rel in rels for u in lines[rel] if u >> 32 == bucket]
        jobs.append(assemble.WriteJob(str(path), [u for u, _, _ in where], [rels.index(r) for _, r, _ in where],
                                      [o for _, _, o in where]))
    out = tmp_path / "out"
    for rel, data in expected.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(b"\0" * len(data))
    digests: Counter[str] = Counter()
    for job in reversed(jobs):
        digests.update(assemble.write_bucket_records(out, rels, job))
    for rel, data in expected.items():
        assert (out / rel).read_bytes() == data
        file_lines = data.splitlines(keepends=True)
        offsets = [0, *itertools.accumulate(len(line) for line in file_lines)][:-1]
        reference = sum(xxhash.xxh3_64_intdigest(line, seed=o) for o, line in zip(offsets, file_lines, strict=True))
        assert digests[rel] == reference & ((1 << 64) - 1)


def test_bucket_runs_cut_a_uid_ordered_stream_by_bucket_across_batches() -> None:
    """The write jobs' places: one run per bucket, whether a bucket ends inside a batch, at its edge,
    or spans several batches (and empty batches between)."""
    uids = [(0 << 32) | 0, (0 << 32) | 3, (2 << 32) | 0, (2 << 32) | 1, (2 << 32) | 5, (7 << 32) | 1]
    table = pa.table({"uid": pa.array(uids, pa.int64()), "rel": [f"r{i}" for i in range(len(uids))]})
    expected = [(0, uids[0:2]), (2, uids[2:5]), (7, uids[5:])]
    for size in (1, 2, 3, 4, len(uids)):
        empty = table.to_batches()[0].slice(0, 0)
        stream = [b for start in range(0, len(uids), size) for b in (table.slice(start, size).to_batches()[0], empty)]
        runs = list(assemble.bucket_runs(stream))
        assert [(b, t.column("uid").to_pylist()) for b, t in runs] == expected, size
        assert runs[1][1].column("rel").to_pylist() == ["r2", "r3", "r4"]
