"""Batch request and result lines wait on disk, not in memory, and pair by the rules of
`pipeline/ingest/formats/batch_join.py` (`pipeline/ingest/sql/batch_pairs.sql`): per (folder, file
stem, custom_id) in file order, then leftovers per (folder, custom_id) when exactly one of each."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path

import pytest
from format_cases import read_rows

from pipeline.ingest import ingest, writer
from pipeline.ingest.formats import PendingLine
from pipeline.ingest.stage import WorkUnit, process_unit


def _input(cid: str, prompt: str) -> str:
    body = {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": prompt}], "max_tokens": 5}
    return json.dumps({"custom_id": cid, "method": "POST", "url": "/v1/chat/completions", "body": body})


def _output(cid: str, answer: str, n: int) -> str:
    body = {"id": f"chatcmpl-{n}", "object": "chat.completion", "created": 1784031000 + n, "model": "gpt-4.1-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}}
    return json.dumps({"id": f"batch_req_{n}", "custom_id": cid, "response": {"status_code": 200, "body": body},
                       "error": None})


def _write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _pairs_of(workdir: Path) -> list[tuple[str | None, str | None, str, int]]:
    rows = read_rows(workdir)
    out = []
    for r in rows:
        prompt = r["messages"][-1]["content"] if r["messages"] else None
        out.append((prompt, r["response_text"], Path(r["source_file"]).name, r["source_line"]))
    return sorted(out, key=str)


def test_batch_lines_pair_by_folder_stem_and_file_order(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    # x: a custom_id repeated inside one batch (a re-run appended) pairs in file order
    _write(logs / "x" / "a_batch_input.jsonl", [_input("t1", "A1"), _input("t2", "A2"), _input("t1", "A1-rerun")])
    _write(logs / "x" / "a_batch_output.jsonl", [_output("t1", "a1", 1), _output("t2", "a2", 2),
                                                 _output("t1", "a1-rerun", 3)])
    # x: stems that do not line up pair when the folder holds exactly one of each for that custom_id
    _write(logs / "x" / "requests.jsonl", [_input("u1", "U1")])
    _write(logs / "x" / "batch_abc_results.jsonl", [_output("u1", "u1", 4)])
    # y: two leftover requests and one leftover result of v1: each becomes a row alone
    _write(logs / "y" / "requests.jsonl", [_input("v1", "V1"), _input("v1", "V1b")])
    _write(logs / "y" / "batch_q_output.jsonl", [_output("v1", "v1", 5)])
    # z: the same custom_id as x's, in another folder: never paired across folders
    _write(logs / "z" / "b_batch_input.jsonl", [_input("t2", "Z2")])
    result = ingest([logs], tmp_path / "work", progress=False, workers=1)
    assert result.totals["rows_written"] == 8
    assert _pairs_of(tmp_path / "work") == sorted([
        ("A1", "a1", "a_batch_output.jsonl", 1),  # a pair's row is the result's line
        ("A2", "a2", "a_batch_output.jsonl", 2),
        ("A1-rerun", "a1-rerun", "a_batch_output.jsonl", 3),
        ("U1", "u1", "batch_abc_results.jsonl", 1),
        (None, "v1", "batch_q_output.jsonl", 1),  # the result alone: no prompt
        ("V1", None, "requests.jsonl", 1),
        ("V1b", None, "requests.jsonl", 2),
        ("Z2", None, "b_batch_input.jsonl", 1),
    ], key=str)


def _reference_pairs(lines: list[PendingLine]) -> list[tuple[str | None, str | None, str, int]]:
    """The pairing as it was written in Python over in-memory state (sessions 1-7): the spec the
    SQL must reproduce, order included (the order rows are staged in)."""
    requests = {(x.folder, x.stem, x.custom_id, x.source_file, x.source_line): x.record
                for x in lines if x.side == "requests"}
    results = {(x.folder, x.stem, x.custom_id, x.source_file, x.source_line): x.record
               for x in lines if x.side == "results"}
    by_batch: dict[tuple, tuple[list, list]] = defaultdict(lambda: ([], []))
    for key in sorted(requests):
        by_batch[key[:3]][0].append(key)
    for key in sorted(results):
        by_batch[key[:3]][1].append(key)
    out = []
    left_req: dict[tuple, list] = defaultdict(list)
    left_res: dict[tuple, list] = defaultdict(list)
    for group in sorted(by_batch):
        reqs, ress = by_batch[group]
        for rq, rs in zip(reqs, ress, strict=False):
            out.append((requests[rq], results[rs], rs[3], rs[4]))
        for rq in reqs[len(ress):]:
            left_req[(group[0], group[2])].append(rq)
        for rs in ress[len(reqs):]:
            left_res[(group[0], group[2])].append(rs)
    for folder_cid in sorted(set(left_req) | set(left_res)):
        reqs, ress = left_req.get(folder_cid, []), left_res.get(folder_cid, [])
        if len(reqs) == 1 and len(ress) == 1:
            out.append((requests[reqs[0]], results[ress[0]], ress[0][3], ress[0][4]))
            continue
        out.extend((None, results[rs], rs[3], rs[4]) for rs in ress)
        out.extend((requests[rq], None, rq[3], rq[4]) for rq in reqs)
    return out


@pytest.mark.parametrize("seed", range(4))
def test_sql_pairing_matches_the_rules_in_order(tmp_path: Path, seed: int) -> None:
    """Random lines over few folders, stems and custom_ids (so every rule and tie occurs), written
    by several units in small parts: the streamed pairs equal the reference, in the same order."""
    rng = random.Random(seed)
    lines = []
    for n in range(400):
        folder, stem = rng.choice(["/l/a", "/l/b", "/l/é"]), rng.choice(["", "x_", "y_"])
        side = rng.choice(["requests", "results"])
        file = f"{folder}/{stem}{'input' if side == 'requests' else 'output'}{rng.choice(['', '2'])}.jsonl"
        lines.append(PendingLine("openai_batch", side, folder, stem, f"c{rng.randrange(12)}", file, n + 1,
                                 json.dumps({"n": n})))
    lines.append(PendingLine("anthropic_batch", "requests", "/l/a", "", "c1", "/l/a/other.jsonl", 1, "{}"))
    staged = writer.StagedRun(tmp_path, "r1")
    spools = [staged.spool(f"u{i:06d}") for i in range(3)]
    for i, line in enumerate(lines):
        spools[i % 3].pend(line)
    for spool in spools:
        spool.close()
    got = list(staged.pending_pairs("openai_batch", "256MB"))
    assert got == _reference_pairs([x for x in lines if x.format == "openai_batch"])
    assert sum(r is not None and q is not None for r, q, _, _ in got) > 50  # pairs, and lines alone, occur
    assert any(q is None for _, q, _, _ in got) and any(r is None for r, _, _, _ in got)


def test_pending_lines_are_staged_on_disk_not_in_the_units_state(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A unit's batch lines go to `pending/` in parts of at most PENDING_FLUSH_ROWS lines (its state,
    which travels to the driver, stays empty), and a retried unit replaces what it staged."""
    monkeypatch.setattr(writer, "PENDING_FLUSH_ROWS", 4)
    src = tmp_path / "logs" / "a_batch_input.jsonl"
    _write(src, [_input(f"t{i}", f"prompt {i}") for i in range(10)])
    staged = writer.StagedRun(tmp_path / "work", "r1")
    unit = WorkUnit(0, str(src))
    for _attempt in range(2):
        done = process_unit(unit, staged)
        assert not done.state.get("openai_batch")
    parts = sorted((staged.tmp / writer.PENDING_DIR).glob("*.parquet"))
    assert len(parts) == 3  # 4 + 4 + 2 lines, once: the retry removed the first attempt's parts
    got = list(staged.pending_pairs("openai_batch", "256MB"))
    assert [(json.loads(q)["custom_id"], r, line) for q, r, _, line in got] == [
        (f"t{i}", None, i + 1) for i in range(10)]
