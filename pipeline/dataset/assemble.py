"""The global half of the dataset stage: DuckDB over the per-bucket files, out of core.

Everything that relates examples of different buckets runs here, on tables DuckDB can spill:
exact duplicates (GROUP BY key), near-duplicate candidates (a join on LSH band keys) verified by
exact Jaccard, the connected components of the verified pairs and of the split links (numpy
arrays of one int64 per example), the seeded group-aware split, the JSONL files written in
order, their re-read validation, the eval-vs-train leakage check, request outcomes and lineage.
Python holds no per-example objects: rows stream through in Arrow batches.

SQL lives in `sql/*.sql` (one query per file, `-- name:` / `-- params:` header, named `$params`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.dataset import dedup as dd
from pipeline.errors import DatasetError
from schemas.dataset import LINEAGE_SCHEMA

SQL_DIR = Path(__file__).with_name("sql")
BATCH_ROWS = 4096
LINEAGE_ROW_GROUP = 131_072  # rows per lineage row group (one group below that, as pyarrow writes it)


@functools.cache
def _sql(name: str) -> tuple[str, tuple[str, ...]]:
    path = SQL_DIR / f"{name}.sql"
    text = path.read_text(encoding="utf-8")
    header = dict(re.findall(r"^--\s*(name|params):\s*(.*)$", text, flags=re.MULTILINE))
    if header.get("name", "").strip() != name:
        raise DatasetError(f"SQL file `{path}`: header `-- name:` must be {name!r}.")
    params = tuple(p.strip() for p in header.get("params", "").split(",") if p.strip() and p.strip() != "-")
    return text, params


def query(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> duckdb.DuckDBPyRelation:
    """`sql/<name>.sql` as a relation, bound to exactly the parameters its header declares."""
    text, declared = _sql(name)
    if set(declared) != set(params):
        raise ValueError(f"{name}.sql declares params {declared}; got {sorted(params)}")
    return con.sql(text, params=params or None)


def execute(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> None:
    """Run a statement file (CREATE TABLE / INSERT)."""
    text, declared = _sql(name)
    if set(declared) != set(params):
        raise ValueError(f"{name}.sql declares params {declared}; got {sorted(params)}")
    con.execute(text, params or None)


def batches(rel: duckdb.DuckDBPyRelation, rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    yield from rel.to_arrow_reader(rows)


def open_work_db(path: Path, memory_limit: str, threads: int) -> duckdb.DuckDBPyConnection:
    """A DuckDB database file for the global steps: tables larger than `memory_limit` spill to it."""
    con = duckdb.connect(str(path))
    con.execute("SET memory_limit = $limit", {"limit": memory_limit})
    con.execute("SET threads = $threads", {"threads": threads})
    con.execute("SET temp_directory = $tmp", {"tmp": str(path.with_suffix(".tmp"))})
    con.execute("SET enable_progress_bar = false")
    return con


@dataclass(frozen=True)
class Inputs:
    examples: str  # glob of the per-bucket example files
    requests: str  # glob of the per-bucket request files


def load_tables(con: duckdb.DuckDBPyConnection, inputs: Inputs) -> None:
    execute(con, "examples_table", examples=inputs.examples)
    execute(con, "requests_table", requests=inputs.requests)
    execute(con, "request_examples_table", requests=inputs.requests)
    con.execute("CREATE TABLE dup (uid BIGINT, reason VARCHAR, best_uid BIGINT, jaccard DOUBLE)")


def components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Connected components of the graph on 0..n-1 with edges (i, j): the smallest member per node.

    Min-label propagation with pointer jumping, vectorized: each round hooks the label of both ends
    of every edge to the smaller one, then jumps every node to its label's label until stable.
    Labels only ever move to a smaller member of the same component, and the loop ends when every
    edge joins equal labels, i.e. one label per component. One int64 per node, no Python per edge.
    """
    labels = np.arange(n, dtype=np.int64)
    if not i.size:
        return labels
    while True:
        li, lj = labels[i], labels[j]
        low = np.minimum(li, lj)
        for target in (li, lj, i, j):
            np.minimum.at(labels, target, low)
        while True:
            jumped = labels[labels]
            if np.array_equal(jumped, labels):
                break
            labels = jumped
        if np.array_equal(labels[i], labels[j]):
            return labels


def _edges(rel: duckdb.DuckDBPyRelation) -> tuple[np.ndarray, np.ndarray]:
    cols = rel.fetchnumpy()
    return np.asarray(cols["i"], dtype=np.int64), np.asarray(cols["j"], dtype=np.int64)


@dataclass(frozen=True)
class DedupOutcome:
    duplicates: int
    near_duplicates: int
    near_pairs_verified: int


def deduplicate(con: duckdb.DuckDBPyConnection, inputs: Inputs, cfg: dd.DedupConfig, group_threshold: float,
                n_examples: int) -> DedupOutcome:
    """Fill `dup` (exact, then near duplicates) and `cand` (verified candidate pairs among the rest)."""
    if cfg.exact:
        execute(con, "exact_duplicates")
    # One candidate join serves both the dedup (>= threshold) and the split groups (>= group
    # threshold, on the same banding), verified once at the lower of the two.
    low = min(cfg.threshold, group_threshold) if group_threshold <= 1 else cfg.threshold
    execute(con, "candidate_pairs", examples=inputs.examples, threshold=low)
    near_pairs = 0
    if cfg.near:
        i, j = _edges(query(con, "near_pairs", threshold=cfg.threshold))
        near_pairs = int(i.size)
        if near_pairs:
            labels = components(n_examples, i, j)
            nodes = np.unique(np.concatenate([i, j]))
            clusters = pa.table({"idx": nodes, "cluster": labels[nodes]})
            con.register("clusters", clusters)
            execute(con, "near_duplicates", threshold=cfg.threshold)
            con.unregister("clusters")
    counts = dict(con.sql("SELECT reason, count(*) FROM dup GROUP BY reason").fetchall())
    return DedupOutcome(counts.get("duplicate", 0), counts.get("near_duplicate", 0), near_pairs)


@dataclass(frozen=True)
class SplitStats:
    groups: int
    largest_group: int
    session_links: int
    near_links: int
    prompt_links: int


def split(con: duckdb.DuckDBPyConnection, n_examples: int, n_kept: int, group_threshold: float, seed: int,
          fraction: float, cap: int, per_task: bool) -> SplitStats:
    """Group-aware, stratified, seeded eval split (dedup.md §2.6); fills `placed`.

    Groups: the same session, the same normalized last prompt, near-duplicates at `group_threshold`
    (on the dedup banding: best effort, the leakage check after writing is the guarantee). Each
    task type gets min(cap, round(fraction x its examples)) eval examples, filled with whole groups
    in the seeded order (the xxh64 of each group's smallest request id), a group that would
    overshoot skipped for smaller ones.
    """
    links = query(con, "split_links").fetchnumpy()
    kinds = np.asarray(links["kind"], dtype=object)
    li, lj = np.asarray(links["i"], dtype=np.int64), np.asarray(links["j"], dtype=np.int64)
    session_links = int(np.count_nonzero(kinds == "session"))
    prompt_links = int(np.count_nonzero(kinds == "prompt"))
    ni = nj = np.zeros(0, dtype=np.int64)
    if n_kept > 1 and group_threshold <= 1:
        ni, nj = _edges(query(con, "split_near_links", threshold=group_threshold))
    i, j = np.concatenate([li, ni]), np.concatenate([lj, nj])
    labels = components(n_examples, i, j)
    nodes = np.unique(np.concatenate([i, j]))
    con.register("group_of", pa.table({"idx": nodes, "grp": labels[nodes]}))
    execute(con, "split_groups")
    groups, largest = con.execute("SELECT count(*), coalesce(max(size), 0) FROM groups").fetchall()[0]

    sizes = dict(con.sql("SELECT task, sum(size) FROM groups GROUP BY task").fetchall())
    targets = {task: min(cap, round(fraction * int(size))) for task, size in sizes.items()}
    taken: dict[str, int] = defaultdict(int)
    chosen: list[int] = []
    ordered = con.sql("SELECT grp, task, size FROM groups ORDER BY task, order_key, first_request_id")
    for batch in batches(ordered, 65_536):
        for grp, task, size in zip(*(batch.column(k).to_pylist() for k in range(3)), strict=True):
            if taken[task] >= targets[task] or taken[task] + size > targets[task]:
                continue
            chosen.append(grp)
            taken[task] += size
    con.register("eval_groups", pa.table({"grp": pa.array(chosen, pa.int64()), "eval": [True] * len(chosen)}))
    execute(con, "placed_table", per_task=per_task)
    con.unregister("eval_groups")
    con.unregister("group_of")
    return SplitStats(int(groups), int(largest), session_links, int(ni.size), prompt_links)


def write_files(con: duckdb.DuckDBPyConnection, inputs: Inputs, out: Path, per_task: bool) -> dict[str, dict[str, Any]]:
    """Write the JSONL files in order; returns {relative path: {split, task_type, examples, sha256}}."""
    if per_task:
        slugs = dict(con.sql("SELECT slug, last(task_type ORDER BY ts NULLS FIRST, final_request_id) "
                             "FROM placed GROUP BY slug").fetchall())
        prefixes = {f"tasks/{s}/": t for s, t in slugs.items()}
    else:
        prefixes = {"": None}
    rels = {f"{p}{s}.jsonl" for p in prefixes for s in ("train", "eval")}  # both always exist, maybe empty
    written: dict[str, tuple[int, str]] = {}
    current: str | None = None
    fh: Any = None
    digest: Any = None
    lines = 0

    def close() -> None:
        if fh is not None and current is not None:
            fh.close()
            written[current] = (lines, digest.hexdigest())

    for batch in batches(query(con, "records", examples=inputs.examples), 1024):
        for rel, record in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True):
            if rel != current:
                close()
                current, lines, digest = rel, 0, hashlib.sha256()
                path = out / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                fh = open(path, "wb")  # noqa: SIM115 - closed in close() when the file changes
            data = (record + "\n").encode("utf-8")
            fh.write(data)
            digest.update(data)
            lines += 1
    close()
    files: dict[str, dict[str, Any]] = {}
    for rel in sorted(rels | set(written)):
        if rel not in written:
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_bytes(b"")
            written[rel] = (0, hashlib.sha256(b"").hexdigest())
        prefix = rel.rsplit("/", 1)[0] + "/" if "/" in rel else ""
        files[rel] = {
            "split": "eval" if rel.endswith("eval.jsonl") else "train",
            "task_type": prefixes.get(prefix) if per_task else None,
            "examples": written[rel][0],
            "sha256": written[rel][1],
        }
    return files


def validate_written(con: duckdb.DuckDBPyConnection, out: Path, files: dict[str, dict[str, Any]],
                     validate: Callable[..., list[str]], max_tokens: int) -> dict[str, Any]:
    """Re-read every written file and run the target format's validator on each record."""
    errors: dict[str, int] = defaultdict(int)
    invalid = checked = 0
    for rel in files:
        tokens = con.sql("SELECT tokens FROM placed WHERE rel = $rel ORDER BY line", params={"rel": rel}).fetchnumpy()
        counts = np.asarray(tokens["tokens"], dtype=np.int64)
        with open(out / rel, encoding="utf-8") as fh:
            line_no = 0
            for line in fh:
                if not line.strip():
                    continue
                record = json.loads(line)
                errs = validate(record, max_tokens, int(counts[line_no]) if line_no < counts.size else None)
                line_no += 1
                checked += 1
                invalid += bool(errs)
                for e in errs:
                    errors[e] += 1
    return {"records_checked": checked, "invalid_records": invalid, "errors": dict(sorted(errors.items()))}


def leakage(con: duckdb.DuckDBPyConnection, inputs: Inputs, cfg: dd.DedupConfig) -> dict[str, Any]:
    """Every eval record against every train record, as written: band-key candidates, exact Jaccard."""
    sides = dict(con.sql("SELECT split, count(*) FROM placed GROUP BY split").fetchall())
    n_train, n_eval = int(sides.get("train", 0)), int(sides.get("eval", 0))
    result: dict[str, Any] = {"threshold": cfg.threshold, "eval_checked": n_eval, "train_indexed": n_train,
                              "pairs": 0, "examples": [], "lsh_params": [cfg.check_bands, cfg.check_rows]}
    if not n_train or not n_eval:
        return result
    execute(con, "leakage_pairs", examples=inputs.examples, threshold=cfg.threshold)
    result["pairs"] = int(con.execute("SELECT count(*) FROM leaks").fetchall()[0][0])
    top = con.sql("SELECT eval_index, train_index, jaccard FROM leaks ORDER BY eval_index, train_index LIMIT 20")
    result["examples"] = [{"eval_index": int(i), "train_index": int(j), "jaccard": round(float(jac), 4)}
                          for i, j, jac in top.fetchall()]
    return result


def request_status(con: duckdb.DuckDBPyConnection) -> None:
    """Fill `status`: the outcome of every request."""
    execute(con, "request_status")
    missing = con.execute("SELECT count(*), min(request_id) FROM status WHERE status IS NULL").fetchall()[0]
    if missing[0]:  # cannot happen: every survivor is the final state or a prefix of one
        raise DatasetError(f"internal: {missing[0]} requests have no outcome (e.g. `{missing[1]}`).")


def write_lineage(con: duckdb.DuckDBPyConnection, inputs: Inputs, path: Path) -> None:
    """lineage.parquet, streamed in row groups of `LINEAGE_ROW_GROUP` rows."""
    pending: list[pa.RecordBatch] = []
    rows = 0
    with pq.ParquetWriter(path, LINEAGE_SCHEMA, compression="zstd") as writer:
        def flush() -> None:
            if pending:
                table = pa.Table.from_batches(pending).cast(LINEAGE_SCHEMA).combine_chunks()
                writer.write_table(table, row_group_size=LINEAGE_ROW_GROUP)
                pending.clear()

        for batch in batches(query(con, "lineage", examples=inputs.examples), 16_384):
            pending.append(batch)
            rows += batch.num_rows
            if rows >= LINEAGE_ROW_GROUP:
                flush()
                rows = 0
        flush()
