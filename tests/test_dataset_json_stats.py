"""Which task types answer in JSON (the `invalid_format` filter's input): counted on the partition
step's batches as they pass, so any cut of the rows into batches must give the planted totals."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from pipeline.dataset.bucket import (
    UNLABELED,
    add_json_stats,
    counting_json_stats,
    json_stats,
    json_task_types,
)

JSON_FORMAT = json.dumps({"response_format": {"type": "json_object"}})


def _planted() -> tuple[pa.Table, dict[str, tuple[int, int]]]:
    rows: list[tuple[str | None, str | None, str | None, str | None]] = []  # task, finish, text, params
    rows += [("extract", "stop", json.dumps({"k": i}), None) for i in range(7)]
    rows += [("extract", "stop", "  \n[1, 2]\u2003", None)]  # str.strip() whitespace around JSON
    rows += [("extract", "stop", "not json", None), ("extract", "stop", "{broken", None)]
    rows += [("extract", "length", json.dumps({"cut": 1}), None)]  # not a finished answer
    rows += [("extract", "stop", " \u2003\n", None), ("extract", "stop", None, None)]  # nothing answered
    rows += [(UNLABELED, "stop", "{}", None), (None, "stop", "{}", None), ("", "stop", "{}", None)]  # unlabelled
    rows += [("chat", "stop", f"hello {i}", None) for i in range(5)]
    rows += [("chat", "stop", "plain text, but JSON was asked for", JSON_FORMAT)]  # the request asked for JSON
    rows += [("chat", None, "{}", None)]
    rows += [("tiny", "stop", "{}", None) for _ in range(4)]
    table = pa.table({
        "task_type": [r[0] for r in rows], "finish_reason": [r[1] for r in rows],
        "response_text": [r[2] for r in rows], "request_params": [r[3] for r in rows],
        "bucket": list(range(len(rows))),
    })
    return table, {"extract": (10, 8), "chat": (6, 1), "tiny": (4, 4)}


def test_the_planted_counts() -> None:
    table, expected = _planted()
    assert json_stats(table) == expected


@pytest.mark.parametrize("size", [1, 3, 7, 1000])
def test_counted_on_the_way_whatever_the_batches(size: int) -> None:
    table, expected = _planted()
    stats: dict[str, tuple[int, int]] = {}
    passed = list(counting_json_stats(table.to_batches(max_chunksize=size), stats))
    assert pa.Table.from_batches(passed).equals(table)  # the batches go on unchanged
    assert stats == expected
    twice: dict[str, tuple[int, int]] = {}
    add_json_stats(twice, stats)
    add_json_stats(twice, stats)
    assert twice == {t: (2 * n, 2 * j) for t, (n, j) in expected.items()}


def test_json_task_types_share_and_minimum() -> None:
    _, stats = _planted()
    assert json_task_types(stats, 0.8) == {"extract"}  # 8 of 10: just inside
    assert json_task_types(stats, 0.81) == frozenset()  # just outside
    assert json_task_types(stats, 0.1) == {"extract", "chat"}  # 1 of 6
    assert "tiny" not in json_task_types(stats, 0.0)  # 4 answers: below the minimum of 5
    assert json_task_types({"tiny": (5, 5)}, 1.0) == {"tiny"}
