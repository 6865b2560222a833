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

import hashlib
import json
import os
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from pipeline.dataset import dedup as dd
from pipeline.errors import DatasetError
from pipeline.similarity import components, intersections, jaccards
from pipeline.sql import SqlDir
from schemas.dataset import LINEAGE_SCHEMA

BATCH_ROWS = 4096
LINEAGE_ROW_GROUP = 131_072  # rows per lineage row group (one group below that, as pyarrow writes it)


# The dataset stage's SQL files, run through the one runner (pipeline/sql.py).
SQL = SqlDir("pipeline.dataset")
query = SQL.query
execute = SQL.execute


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
    """The per-bucket files `bucket.build_bucket` wrote under `work`."""

    work: Path

    @property
    def examples(self) -> str:
        return str(self.work / "examples" / "*.parquet")

    @property
    def requests(self) -> str:
        return str(self.work / "requests" / "*.parquet")

    def example_files(self) -> list[Path]:
        return sorted((self.work / "examples").glob("*.parquet"))


def load_tables(con: duckdb.DuckDBPyConnection, inputs: Inputs) -> None:
    execute(con, "examples_table", examples=inputs.examples)
    execute(con, "requests_table", requests=inputs.requests)
    execute(con, "request_examples_table", requests=inputs.requests)
    con.execute("CREATE TABLE dup (uid BIGINT, reason VARCHAR, best_uid BIGINT, jaccard DOUBLE)")


def verified_pairs(con: duckdb.DuckDBPyConnection, pairs_sql: str, sets_sql: str, threshold: float,
                   chunk: int = 16_384) -> Iterator[pa.Table]:
    """The rows of `pairs_sql` (i, j, ni, nj, ...) at exact Jaccard >= threshold, with `jaccard`.

    Pairs stream in chunks (ordered by i, so a chunk needs few distinct sets); `sets_sql` fetches
    the sets of a chunk's documents (the uids registered as `wanted`). Memory: one chunk.
    """
    reader = con.cursor()  # the pairs stream on their own connection while `con` fetches sets
    try:
        for batch in batches(reader.sql(pairs_sql), chunk):
            if not batch.num_rows:
                continue
            i = batch.column("i").to_numpy()
            j = batch.column("j").to_numpy()
            con.register("wanted", pa.table({"uid": np.unique(np.concatenate([i, j]))}))
            found = con.sql(sets_sql).to_arrow_table().combine_chunks()
            con.unregister("wanted")
            inter = intersections(i, j, found.column("uid").to_numpy(), found.column("hashes").chunk(0))
            jac = jaccards(inter, batch.column("ni").to_numpy(), batch.column("nj").to_numpy())
            keep = jac >= threshold
            if keep.any():
                yield pa.Table.from_batches([batch]).filter(pa.array(keep)).append_column("jaccard", pa.array(jac[keep]))
    finally:
        reader.close()


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
    execute(con, "candidate_sets", examples=inputs.examples)
    con.execute("CREATE TABLE cand (i BIGINT, j BIGINT, ni INTEGER, nj INTEGER, jaccard DOUBLE)")
    for part in verified_pairs(con, "SELECT i, j, ni, nj FROM cand_pairs ORDER BY i, j",
                               "SELECT uid, hashes FROM cand_sets SEMI JOIN wanted USING (uid)", low):
        con.register("part", part)
        con.execute("INSERT INTO cand SELECT i, j, ni, nj, jaccard FROM part")
        con.unregister("part")
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
    eval_targets: dict[str, int] = field(default_factory=dict)  # task type -> eval examples wanted


@dataclass(frozen=True)
class EvalPolicy:
    """How many examples of a task type are held out (checklist: a 200-500 example test set per task
    type to judge it; hold out at least 20% when data is small)."""

    min_fraction: float = 0.20  # at least this share, until the target's upper end is reached
    target_min: int = 200  # aim for at least this many ...
    target_max: int = 500  # ... and at most this many
    max_fraction: float = 0.30  # but never more than this share of a small task type

    def target(self, n: int) -> int:
        """Eval examples wanted for a task type of `n` examples."""
        floor = round(self.min_fraction * n)
        want = min(max(floor, self.target_min), self.target_max)
        return min(want, max(floor, round(self.max_fraction * n)))


def split(con: duckdb.DuckDBPyConnection, n_examples: int, n_kept: int, group_threshold: float, seed: int,
          policy: EvalPolicy, per_task: bool) -> SplitStats:
    """Group-aware, stratified, seeded eval split (dedup.md §2.6); fills `placed`.

    Groups: the same session, the same normalized last prompt, near-duplicates at `group_threshold`
    (on the dedup banding: best effort, the leakage check after writing is the guarantee). Each
    task type gets `policy.target(its examples)` eval examples, filled with whole groups in the
    seeded order (the xxh64 of each group's smallest request id), a group that would overshoot
    skipped for smaller ones.
    """
    links = query(con, "split_links").fetchnumpy()
    kinds = np.asarray(links["kind"], dtype=np.int8)
    li, lj = np.asarray(links["i"], dtype=np.int64), np.asarray(links["j"], dtype=np.int64)
    session_links = int(np.count_nonzero(kinds == 0))
    prompt_links = int(np.count_nonzero(kinds == 1))
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
    targets = {task: policy.target(int(size)) for task, size in sizes.items()}
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
    return SplitStats(int(groups), int(largest), session_links, int(ni.size), prompt_links,
                      {str(t): int(v) for t, v in sorted(targets.items())})


_MASK64 = (1 << 64) - 1


def _line_digest(offset: int, line: bytes) -> int:
    return xxhash.xxh3_64_intdigest(line, seed=offset)


def write_files(con: duckdb.DuckDBPyConnection, inputs: Inputs, out: Path, per_task: bool,
                written: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Write the JSONL files; returns {relative path: {split, task_type, examples, sha256 (set by
    `validate_written`)}}, and fills `written` with an order-free digest of each file's lines (the
    sum of their hashes seeded by their offsets) for `validate_written` to check.

    Every record goes straight to its byte offset (`placed.byte_offset`), read bucket by bucket
    from the per-bucket files: the files come out in line order with no sort of the records
    themselves, and memory is one bucket's records.
    """
    if per_task:
        slugs = dict(con.sql("SELECT slug, last(task_type ORDER BY ts NULLS FIRST, final_request_id) "
                             "FROM placed GROUP BY slug").fetchall())
        prefixes = {f"tasks/{s}/": t for s, t in slugs.items()}
    else:
        prefixes = {"": None}
    sizes = {rel: (int(n), int(size)) for rel, n, size in
             con.sql("SELECT rel, count(*), sum(record_bytes) FROM placed GROUP BY rel").fetchall()}
    rels = {f"{p}{s}.jsonl" for p in prefixes for s in ("train", "eval")} | set(sizes)  # both always exist
    fds: dict[str, int] = {}
    digests: dict[str, int] = defaultdict(int)
    try:
        for rel in sorted(rels):
            path = out / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            fds[rel] = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.ftruncate(fds[rel], sizes.get(rel, (0, 0))[1])
        for path in inputs.example_files():
            # One bucket at a time: its records from its file, their places from `placed` (a
            # bucket's uids are one range), so no join ever holds records.
            records = pq.read_table(path, columns=["uid", "record"])
            if not records.num_rows:
                continue
            uids = records.column("uid").to_numpy()
            where = query(con, "records", first_uid=int(uids.min()), last_uid=int(uids.max())).fetchnumpy()
            place = {int(u): (str(r), int(o)) for u, r, o in zip(where["uid"], where["rel"], where["byte_offset"],
                                                                 strict=True)}
            for uid, record in zip(uids.tolist(), records.column("record").to_pylist(), strict=True):
                if uid in place:
                    rel, offset = place[uid]
                    data = (record + "\n").encode("utf-8")
                    os.pwrite(fds[rel], data, offset)
                    digests[rel] = (digests[rel] + _line_digest(offset, data)) & _MASK64
            del records
            pa.default_memory_pool().release_unused()
    finally:
        for fd in fds.values():
            os.close(fd)
    files: dict[str, dict[str, Any]] = {}
    for rel in sorted(rels):
        prefix = rel.rsplit("/", 1)[0] + "/" if "/" in rel else ""
        files[rel] = {
            "split": "eval" if rel.endswith("eval.jsonl") else "train",
            "task_type": prefixes.get(prefix) if per_task else None,
            "examples": sizes.get(rel, (0, 0))[0],
            "sha256": None,
        }
        written[rel] = digests.get(rel, 0)
    return files


def _loads(raw: bytes) -> Any:
    """A written record parsed back: orjson (3x faster) gives the same objects for every valid JSON
    document it accepts; what it refuses (integers beyond 64 bits, NaN) the standard library reads."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def validate_written(con: duckdb.DuckDBPyConnection, out: Path, files: dict[str, dict[str, Any]],
                     validate: Callable[..., list[str]], max_tokens: int, written: dict[str, int]) -> dict[str, Any]:
    """Re-read every written file: its sha256 (into `files`), the target format's validator on each
    record, and a check that it holds exactly the records written (the leakage check and lineage
    were computed on those records)."""
    errors: dict[str, int] = defaultdict(int)
    invalid = checked = 0
    for rel, info in files.items():
        tokens = con.sql("SELECT tokens FROM placed WHERE rel = $rel ORDER BY line", params={"rel": rel}).fetchnumpy()
        counts = np.asarray(tokens["tokens"], dtype=np.int64)
        digest = hashlib.sha256()
        line_no = offset = lines_digest = 0
        with open(out / rel, "rb") as fh:
            for raw in fh:
                digest.update(raw)
                lines_digest = (lines_digest + _line_digest(offset, raw)) & _MASK64
                offset += len(raw)
                if not raw.strip():
                    continue
                errs = validate(_loads(raw), max_tokens, int(counts[line_no]) if line_no < counts.size else None)
                line_no += 1
                checked += 1
                invalid += bool(errs)
                for e in errs:
                    errors[e] += 1
        info["sha256"] = digest.hexdigest()
        if lines_digest != written.get(rel, 0):
            raise DatasetError(f"internal: `{out / rel}` does not read back as written; rerun `logaudit dataset`.")
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
    execute(con, "leakage_sets", examples=inputs.examples)
    con.execute("CREATE TABLE leaks (eval_index BIGINT, train_index BIGINT, jaccard DOUBLE)")
    for part in verified_pairs(con, "SELECT i, j, ni, nj, eval_index, train_index FROM leak_pairs ORDER BY i, j",
                               "SELECT uid, hashes FROM leak_sets SEMI JOIN wanted USING (uid)", cfg.threshold):
        con.register("part", part)
        con.execute("INSERT INTO leaks SELECT eval_index, train_index, jaccard FROM part")
        con.unregister("part")
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
