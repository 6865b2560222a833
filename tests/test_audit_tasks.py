"""Task types: clustering quality against the generator's truth, the tables' contracts, and the
fingerprint machinery (masking, bulk MinHash = datasketch, LSH linking)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from datasketch import MinHash
from planted_tasks import write_planted

from audit import tasks
from audit.tasks import OTHER, TasksConfig, adjusted_rand_index
from pipeline.ingest import ingest
from pipeline.similarity import MinHasher, ShingleHasher, UnionFind, jaccard, lsh_link, mask_dynamic, words
from schemas.labels import (
    REQUEST_LABELS_SCHEMA,
    SIGNAL_RATES_SCHEMA,
    TASK_TYPE_VERSIONS_SCHEMA,
    TASK_TYPES_SCHEMA,
    markdown,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def sample_audit(sample_workdir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("tasks_audit")
    summary = tasks.run(sample_workdir, out, {})
    return out, summary


@pytest.fixture(scope="module")
def sample_labels(sample_audit: tuple[Path, dict]) -> list[dict]:
    return pq.read_table(sample_audit[0] / "request_labels.parquet").to_pylist()


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict[str, dict]]:
    """The small planted corpus (tests/planted_tasks.py) ingested and audited."""
    base = tmp_path_factory.mktemp("planted")
    truth = write_planted(base / "logs")
    ingest([str(base / "logs")], base / "work", progress=False)
    tasks.run(base / "work", base / "work" / "audit", {})
    labels = {r["request_id"]: r for r in pq.read_table(base / "work" / "audit" / "request_labels.parquet").to_pylist()}
    return base, truth, labels


# --- quality against the sample's truth ------------------------------------------------------------


def test_task_types_agree_with_truth(sample_labels: list[dict], sample_truth_requests: dict[str, dict]) -> None:
    rows = [r for r in sample_labels if r["request_id"] in sample_truth_requests]
    assert len(rows) >= 0.99 * len(sample_truth_requests)
    truth = [sample_truth_requests[r["request_id"]]["task_type"] for r in rows]
    predicted = [r["task_type"] for r in rows]
    ari = adjusted_rand_index(truth, predicted)
    assert ari >= 0.95, f"adjusted Rand index {ari:.4f} < 0.95"


def test_no_planted_type_is_split(sample_labels: list[dict], sample_truth_requests: dict[str, dict]) -> None:
    """No planted type spreads over two clusters that each hold >= 5% of its requests."""
    by_truth: dict[str, Counter[str]] = defaultdict(Counter)
    for r in sample_labels:
        t = sample_truth_requests.get(r["request_id"])
        if t is not None:
            by_truth[t["task_type"]][r["task_type"]] += 1
    assert len(by_truth) >= 5
    for planted_type, clusters in by_truth.items():
        total = sum(clusters.values())
        big = [c for c, n in clusters.items() if n >= 0.05 * total]
        assert len(big) == 1, f"{planted_type} split over {dict(clusters)}"
        assert big[0] != OTHER, f"{planted_type} landed in `other`"


def test_prompt_versions_stay_in_one_type_and_are_reported(
    sample_audit: tuple[Path, dict], sample_labels: list[dict], sample_truth: dict, sample_truth_requests: dict
) -> None:
    out, _ = sample_audit
    changed = {t: info for t, info in sample_truth["task_types"].items() if info["system_prompt_versions"] > 1}
    assert changed, "the sample plants a system-prompt version change"
    types = {r["task_type"]: r for r in pq.read_table(out / "task_types.parquet").to_pylist()}
    versions = pq.read_table(out / "task_type_versions.parquet").to_pylist()
    for planted_type, info in changed.items():
        clusters = Counter(r["task_type"] for r in sample_labels
                           if sample_truth_requests.get(r["request_id"], {}).get("task_type") == planted_type)
        cluster = clusters.most_common(1)[0][0]
        assert types[cluster]["system_versions"] == info["system_prompt_versions"]
        mine = [v for v in versions if v["task_type"] == cluster]
        assert [v["version"] for v in mine] == list(range(1, info["system_prompt_versions"] + 1))
        assert mine[1]["similarity_to_previous"] > 0.5 and mine[1]["added_text"]
        assert mine[0]["last_seen"] <= mine[1]["first_seen"]  # v2 replaced v1 at the switch


# --- the tables ---------------------------------------------------------------------------------------


def test_tables_follow_their_schemas(sample_audit: tuple[Path, dict], sample_workdir: Path) -> None:
    out, _ = sample_audit
    for name, schema in (("request_labels", REQUEST_LABELS_SCHEMA), ("task_types", TASK_TYPES_SCHEMA),
                         ("task_type_versions", TASK_TYPE_VERSIONS_SCHEMA), ("signal_rates", SIGNAL_RATES_SCHEMA)):
        assert pq.read_schema(out / f"{name}.parquet").remove_metadata() == schema, name
    labels = pq.read_table(out / "request_labels.parquet")
    from pipeline.workdir.store import connect_store

    con = connect_store(sample_workdir)
    n_requests = con.sql("SELECT count(*) FROM requests").fetchall()[0][0]
    con.close()
    assert labels.num_rows == n_requests
    assert len(set(labels["request_id"].to_pylist())) == n_requests
    assert not list(out.glob(".*tmp*")), "no temporary files left behind"


def test_task_type_table_figures(sample_audit: tuple[Path, dict], sample_labels: list[dict]) -> None:
    out, summary = sample_audit
    types = pq.read_table(out / "task_types.parquet").to_pylist()
    counts = Counter(r["task_type"] for r in sample_labels)
    assert {t["task_type"]: t["requests"] for t in types} == dict(counts)
    assert sum(t["share_requests"] for t in types) == pytest.approx(1.0)
    assert sum(t["share_tokens"] for t in types) == pytest.approx(1.0)
    named = [t for t in types if t["task_type"] != OTHER]
    assert [t["requests"] for t in named] == sorted((t["requests"] for t in named), reverse=True)
    assert types[-1]["cumulative_share_requests"] == pytest.approx(1.0)
    assert summary["top_k_share"] == pytest.approx(sum(t["share_requests"] for t in named[:3]), abs=1e-4)
    for t in named:
        assert t["label"] and len(t["label"]) <= 120
        assert 0 <= t["repetitiveness"] <= 1
        assert t["clean_examples"] == sum(1 for r in sample_labels if r["task_type"] == t["task_type"]
                                          and r["clean_example"])
        assert t["models"] and t["input_tokens_p50"] <= t["input_tokens_p90"]
    # JSON tasks are recognized as such, with one stable key set
    json_types = [t for t in named if (t["json_output_rate"] or 0) > 0.9]
    assert json_types and all(t["json_keyset_stability"] > 0.9 for t in json_types)
    labels = [t["label"] for t in named]
    assert len(set(labels)) == len(labels), "labels tell types apart"
    assert summary["headline"].startswith(f"{len(named)} task types")


def test_spend_shares_join_request_costs(sample_workdir: Path, tmp_path: Path, sample_labels: list[dict]) -> None:
    """With audit.cost's request_costs.parquet present, spend is summed from it, never priced here."""
    import pyarrow as pa

    ids = [r["request_id"] for r in sample_labels]
    pq.write_table(pa.table({"request_id": ids, "cost_usd": [0.5] * len(ids)}), tmp_path / "request_costs.parquet")
    tasks.run(sample_workdir, tmp_path, {})
    types = pq.read_table(tmp_path / "task_types.parquet").to_pylist()
    for t in types:
        assert t["spend_usd"] == pytest.approx(0.5 * t["requests"])
        assert t["share_spend"] == pytest.approx(t["share_requests"])


def test_spend_is_null_without_costs(sample_audit: tuple[Path, dict]) -> None:
    out, summary = sample_audit
    assert not summary["spend_joined"]
    assert all(t["spend_usd"] is None and t["share_spend"] is None
               for t in pq.read_table(out / "task_types.parquet").to_pylist())


def test_labels_doc_is_current() -> None:
    assert (ROOT / "schemas" / "labels.md").read_text(encoding="utf-8") == markdown(), (
        "schemas/labels.md is stale: run `python -m schemas.labels`"
    )


def test_cli_audit_prints_the_tasks_headline(planted: tuple[Path, dict, dict[str, dict]], tmp_path: Path) -> None:
    import shutil

    from pipeline.cli import cli

    work = tmp_path / "work"
    shutil.copytree(planted[0] / "work", work, symlinks=True)
    result = CliRunner(env={"COLUMNS": "80"}).invoke(cli, ["audit", str(work)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.output.splitlines() if ln.strip().startswith("tasks:"))
    assert "task types" in line and "clean requests" in line and "answered" in line  # issue 12: requests, not examples
    summary = json.loads((work / "audit" / "summary.json").read_text(encoding="utf-8"))
    assert summary["sections"]["tasks"]["headline"] in line
    assert (work / "audit" / "request_labels.parquet").is_file()


# --- planted corpus: the cases the sample does not cover ---------------------------------------------


def test_planted_corpus_types(planted: tuple[Path, dict, dict[str, dict]]) -> None:
    base, truth, labels = planted
    ids = sorted(labels)
    ari = adjusted_rand_index([truth[i]["task_type"] for i in ids], [labels[i]["task_type"] for i in ids])
    assert ari >= 0.95
    by_truth: dict[str, Counter[str]] = defaultdict(Counter)
    for i in ids:
        by_truth[truth[i]["task_type"]][labels[i]["task_type"]] += 1
    # free-form chat has no template: it is `other`, not a pile of small types
    assert by_truth["chat"].most_common(1)[0][0] == OTHER
    # one generic system prompt serving two user templates is split into two types
    assert by_truth["extract"].most_common(1)[0][0] != by_truth["reply"].most_common(1)[0][0]
    # two tasks sharing a preamble are not merged
    assert by_truth["triage"].most_common(1)[0][0] != by_truth["summary"].most_common(1)[0][0]
    # a user-templated task without a system prompt is found by content
    types = {t["task_type"]: t for t in pq.read_table(base / "work" / "audit" / "task_types.parquet").to_pylist()}
    translate = types[by_truth["translate"].most_common(1)[0][0]]
    assert translate["basis"] == "content" and translate["label"].startswith("Translate the following")
    assert types[by_truth["triage"].most_common(1)[0][0]]["label"].startswith("Classify the customer ticket")


def test_family_split_can_be_disabled(planted: tuple[Path, dict, dict[str, dict]], tmp_path: Path) -> None:
    base, truth, _ = planted
    tasks.run(base / "work", tmp_path, {"audit": {"tasks": {"family_split_min_share": 0.9}}})
    labels = {r["request_id"]: r["task_type"] for r in pq.read_table(tmp_path / "request_labels.parquet").to_pylist()}
    extract = {labels[i] for i, t in truth.items() if t["task_type"] == "extract"}
    reply = {labels[i] for i, t in truth.items() if t["task_type"] == "reply"}
    assert extract == reply and len(extract) == 1


def test_unknown_config_key_is_an_error(planted: tuple[Path, dict, dict[str, dict]], tmp_path: Path) -> None:
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match="min_type_request"):
        tasks.run(planted[0] / "work", tmp_path, {"audit": {"tasks": {"min_type_request": 3}}})


# --- fingerprints ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Today is 2026-09-01T10:22:03Z.", "today is #."),
        ("Session 3fa2f6ab-5bc5-4c42-96cf-f0e78d71706d opened", "session # opened"),
        ("Ticket TCK-48213 by agent_17 at 10:30 am", "ticket # by # at #"),
        ("Due March 3, 2026 or 03/04/2026; mail bob@x.com", "due # or #; mail #"),
        ("Plain   text\n stays", "plain text stays"),
    ],
)
def test_mask_dynamic(text: str, expected: str) -> None:
    assert mask_dynamic(text) == expected


def test_sql_masking_matches_python() -> None:
    """The masking the SQL applies to system prompts (tasks_system_prompts.sql) equals mask_dynamic."""
    import duckdb

    from audit.tasks import temp_table
    from pipeline.similarity import DYNAMIC_SPAN_PATTERN

    samples = ["Today is 2026-09-01T10:22:03Z, ticket TCK-48213.", "Order #48213 for 12.50 usd on Monday",
               "uuid 3fa2f6ab-5bc5-4c42-96cf-f0e78d71706d hex deadbeef12 at 9:05",
               "Two  spaces,\ttab\n\nand lines \r\n end ", "plain words only"]
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE requests AS SELECT s AS system_text, [{'role': 'user', 'content': 'x'}] AS messages, "
        "TIMESTAMPTZ '2026-09-01 00:00:00+00' AS ts FROM (SELECT unnest($s) AS s)",
        {"s": samples},
    )
    temp_table(con, "system_prompts", "tasks_system_prompts", mask_pattern=DYNAMIC_SPAN_PATTERN)
    got = dict(con.sql("SELECT system_text, system_masked FROM system_prompts").fetchall())
    assert got == {s.strip(" "): mask_dynamic(s) for s in samples}  # the SQL keeps the prompt trimmed


def test_bulk_signatures_equal_datasketch() -> None:
    hasher = ShingleHasher(3)
    docs = ["the quick brown fox jumps over the lazy dog", "a b", "", "one two three four five six seven"]
    sets = [hasher.shingles(words(d)) for d in docs]
    sigs = MinHasher(64, seed=3, chunk_shingles=5).signatures(sets)  # small chunks: exercises the batching
    for s, row in zip(sets, sigs, strict=True):
        m = MinHash(num_perm=64, seed=3, hashfunc=int)
        m.update_batch(list(s))
        assert np.array_equal(m.hashvalues, row)


def test_lsh_link_groups_near_duplicates_only() -> None:
    rng = np.random.default_rng(5)
    base = [rng.integers(0, 2**32, 60, dtype=np.uint32) for _ in range(3)]
    sets = []
    for b in base:  # three templates, four variants each sharing ~85% of shingles
        for _ in range(4):
            s = b.copy()
            s[:5] = rng.integers(0, 2**32, 5, dtype=np.uint32)
            sets.append(np.unique(s))
    sigs = MinHasher(128).signatures(sets)
    labels = lsh_link(sigs, 0.6).labels()
    assert len(set(labels.tolist())) == 3
    assert all(len({labels[i] for i in range(k * 4, k * 4 + 4)}) == 1 for k in range(3))
    assert jaccard(sets[0], sets[1]) > 0.6 > jaccard(sets[0], sets[4])


def test_union_find_labels_are_smallest_members() -> None:
    uf = UnionFind(6)
    uf.union(4, 2)
    uf.union(5, 4)
    uf.union(0, 1)
    assert uf.labels().tolist() == [0, 0, 2, 3, 2, 2]


@pytest.mark.parametrize(
    ("truth", "predicted", "expected"),
    [
        ([0, 0, 1, 1], [1, 1, 0, 0], 1.0),
        ([0, 0, 1, 2], [0, 0, 1, 1], 0.5714285714),  # scikit-learn's documented example
        ([0, 0, 0, 0], [0, 1, 2, 3], 0.0),
        (["a", "a", "b", "b"], ["x", "y", "x", "y"], -0.5),
    ],
)
def test_adjusted_rand_index(truth: list, predicted: list, expected: float) -> None:
    assert adjusted_rand_index(truth, predicted) == pytest.approx(expected)


def test_config_defaults_are_documented() -> None:
    """Every TasksConfig field carries a docstring-comment in the source (datatrove style)."""
    import dataclasses
    import inspect

    source = inspect.getsource(TasksConfig)
    for f in dataclasses.fields(TasksConfig):
        after = source.split(f"    {f.name}:", 1)[1].split("\n", 2)
        assert '"""' in after[1], f"TasksConfig.{f.name} has no description"
    assert json.dumps(dataclasses.asdict(TasksConfig()))  # plain data, TOML-overridable


def test_requests_without_prompt_text_are_other(tmp_path: Path) -> None:
    """Response-only records (no request body logged) share an empty prompt: that is no template."""
    logs = tmp_path / "logs"
    logs.mkdir()
    with open(logs / "responses.jsonl", "w", encoding="utf-8") as fh:
        for i in range(30):
            response = {"id": f"chatcmpl-{i}", "object": "chat.completion", "model": "gpt-4o",
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": f"answer {i}"},
                                     "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 3}}
            fh.write(json.dumps({"id": f"r{i}", "timestamp": f"2026-09-01T10:{i:02d}:00Z", "request": None,
                                 "response": response}) + "\n")
    ingest([str(logs)], tmp_path / "work", progress=False)
    summary = tasks.run(tmp_path / "work", tmp_path / "out", {})
    labels = pq.read_table(tmp_path / "out" / "request_labels.parquet").to_pylist()
    assert len(labels) == 30 and {r["task_type"] for r in labels} == {OTHER}
    assert summary["task_types"] == 0 and summary["requests_without_prompt"] == 30


def test_spend_per_type_matches_truth_in_the_full_audit(sample_run, sample_truth: dict,
                                                        sample_truth_requests: dict[str, dict]) -> None:
    """Through `run_audits`, audit.cost writes request_costs.parquet first and each type's spend
    is the sum over its requests: it matches the generator's spend per planted task."""
    audit_dir = sample_run.workdir / "audit"
    types = {t["task_type"]: t for t in pq.read_table(audit_dir / "task_types.parquet").to_pylist()}
    labels = pq.read_table(audit_dir / "request_labels.parquet").to_pylist()
    cluster_of: dict[str, Counter[str]] = defaultdict(Counter)
    for r in labels:
        t = sample_truth_requests.get(r["request_id"])
        if t is not None:
            cluster_of[t["task_type"]][r["task_type"]] += 1
    for planted_type, info in sample_truth["task_types"].items():
        cluster = cluster_of[planted_type].most_common(1)[0][0]
        assert types[cluster]["spend_usd"] == pytest.approx(info["spend_usd"], rel=0.02), planted_type
    assert sum(t["share_spend"] for t in types.values() if t["share_spend"] is not None) == pytest.approx(1.0)


@pytest.mark.parametrize("path", sorted(p.name for p in (ROOT / "audit" / "sql").glob("*.sql")
                                        if p.name.startswith(("tasks_", "signals_"))))
def test_sql_file_headers(path: str) -> None:
    """Each query file names itself and declares exactly the `$params` it uses."""
    import re

    from audit.tables import load_sql

    q = load_sql(path.removesuffix(".sql"))
    assert set(re.findall(r"\$([a-z_][a-z0-9_]*)", q.sql)) == set(q.params), path
    assert q.description, path
