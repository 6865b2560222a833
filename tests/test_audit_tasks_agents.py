"""Task types that see the tool set (issue #13, part 3), on planted agent traffic whose tasks share a
base system prompt and differ by tools (tests/planted_agents.py)."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from audit import tasks
from audit.tasks import _grown_version, _ToolSet, adjusted_rand_index


@pytest.fixture(scope="module")
def agents(agents_world: tuple[Path, dict]) -> tuple[Path, dict]:
    return agents_world


def labels_of(wd: Path, out: Path, config: dict) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    tasks.run(wd, out, config)
    return {r["request_id"]: r["task_type"] for r in pq.read_table(out / "request_labels.parquet").to_pylist()}


def mapping(truth: dict, labels: dict[str, str]) -> dict[str, Counter]:
    by_truth: dict[str, Counter] = defaultdict(Counter)
    for rid, t in truth.items():
        by_truth[t["task_type"]][labels[rid]] += 1
    return by_truth


def test_tool_sets_split_shared_prompts(agents: tuple[Path, dict], tmp_path: Path) -> None:
    wd, truth = agents
    labels = labels_of(wd, tmp_path / "audit", {})
    ids = sorted(truth)
    ari = adjusted_rand_index([truth[i]["task_type"] for i in ids], [labels[i] for i in ids])
    assert ari >= 0.95, ari
    by_truth = mapping(truth, labels)
    # no planted type is split in two (tool order varies per request; inventory's tools grew)
    for task, c in by_truth.items():
        assert len(c) == 1, (task, c)
    top = {task: c.most_common(1)[0][0] for task, c in by_truth.items()}
    assert len(set(top.values())) == 14  # ... and no two are merged
    types = {t["task_type"]: t for t in pq.read_table(tmp_path / "audit" / "task_types.parquet").to_pylist()}
    assert types[top["analytics_sql"]]["label"].endswith("[tools: describe_table, list_tables, run_sql]")
    assert "+tool_set" in types[top["support_escalation"]]["basis"]
    assert "[tools:" not in types[top["inventory"]]["label"]  # one task, not split


def test_without_tool_sets_the_pairs_merge(agents: tuple[Path, dict], tmp_path: Path) -> None:
    """The issue's symptom, reproduced with the split off (so the test above can fail)."""
    wd, truth = agents
    labels = labels_of(wd, tmp_path / "audit", {"audit": {"tasks": {"tool_split": False}}})
    ids = sorted(truth)
    assert adjusted_rand_index([truth[i]["task_type"] for i in ids], [labels[i] for i in ids]) < 0.9
    by_truth = mapping(truth, labels)
    assert by_truth["support"].most_common(1)[0][0] == by_truth["support_escalation"].most_common(1)[0][0]


def test_unstable_tool_sets_do_not_split(agents: tuple[Path, dict], tmp_path: Path) -> None:
    """Requiring every session to be stable beyond what any traffic has turns the split off."""
    wd, truth = agents
    labels = labels_of(wd, tmp_path / "audit", {"audit": {"tasks": {"tool_split_min_stability": 1.01}}})
    by_truth = mapping(truth, labels)
    assert by_truth["analytics_sql"].most_common(1)[0][0] == by_truth["analytics_dashboards"].most_common(1)[0][0]


MIN = 60_000


@pytest.mark.parametrize(("inside", "grown"), [(9, True), (10, True), (11, False)])
def test_grown_version_overlap_both_sides(inside: int, grown: bool) -> None:
    """An older subset whose requests fall inside the newer set's period at most 10% of the time is a
    version (the tools grew); more overlap means two concurrent tasks."""
    newer = _ToolSet(frozenset({"a", "b"}), ts=[(1000 + i) * MIN for i in range(100)])
    older = _ToolSet(frozenset({"a"}), ts=[i * MIN for i in range(100 - inside)] + [(1040 + i) * MIN for i in range(inside)])
    assert _grown_version(older, newer, 0.1) is grown
    assert _grown_version(newer, older, 0.1) is grown
    # concurrent sets whose names are not nested are never versions
    assert _grown_version(_ToolSet(frozenset({"x"}), ts=older.ts), newer, 0.1) is False
