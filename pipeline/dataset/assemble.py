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
import itertools
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from pipeline.dataset import dedup as dd
from pipeline.dataset.bucket import bucket_file_name
from pipeline.errors import DatasetError
from pipeline.similarity import components, intersections, jaccards
from pipeline.sql import SqlDir, arrow_tables
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
    def validation(self) -> str:
        return str(self.work / "validation" / "*.parquet")

    @property
    def requests(self) -> str:
        return str(self.work / "requests" / "*.parquet")

    def example_files(self) -> list[Path]:
        return sorted((self.work / "examples").glob("*.parquet"))

    def example_file(self, bucket: int) -> Path:
        return self.work / "examples" / bucket_file_name(bucket)


def load_tables(con: duckdb.DuckDBPyConnection, inputs: Inputs) -> None:
    execute(con, "examples_table", examples=inputs.examples)
    execute(con, "requests_table", requests=inputs.requests)
    execute(con, "request_examples_table", requests=inputs.requests)
    execute(con, "dup_table")


def verified_pairs(con: duckdb.DuckDBPyConnection, pairs: str, sets: str, threshold: float,
                   chunk: int = 16_384) -> Iterator[pa.Table]:
    """The rows of the query file `pairs` (i, j, ni, nj, ...) at exact Jaccard >= threshold, with `jaccard`.

    Pairs stream in chunks (ordered by i, so a chunk needs few distinct sets); the query file `sets`
    fetches the sets of a chunk's documents (the chunk registered as `pairs`). Memory: one chunk.
    """
    reader = con.cursor()  # the pairs stream on their own connection while `con` fetches sets
    try:
        for batch in batches(query(reader, pairs), chunk):
            part = pa.Table.from_batches([batch])
            with arrow_tables(con, pairs=part):
                found = query(con, sets).to_arrow_table()
            inter = intersections(batch.column("i").to_numpy(), batch.column("j").to_numpy(),
                                  found.column("uid").to_numpy(), found.column("hashes").combine_chunks())
            jac = jaccards(inter, batch.column("ni").to_numpy(), batch.column("nj").to_numpy())
            keep = jac >= threshold
            if keep.any():
                yield part.filter(pa.array(keep)).append_column("jaccard", pa.array(jac[keep]))
    finally:
        reader.close()


def insert_verified(con: duckdb.DuckDBPyConnection, pairs: str, sets: str, threshold: float, insert: str) -> None:
    """Append the pairs of `verified_pairs` to a table, chunk by chunk (the statement file `insert`
    reads each chunk as `part`)."""
    for part in verified_pairs(con, pairs, sets, threshold):
        with arrow_tables(con, part=part):
            execute(con, insert)


def _edges(rel: duckdb.DuckDBPyRelation) -> tuple[np.ndarray, np.ndarray]:
    cols = rel.fetchnumpy()  # BIGINT columns: int64 arrays
    return cols["i"], cols["j"]


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
    # Grouping off (a group threshold above 1) keeps the dedup threshold: above 1 no pair verifies.
    low = min(cfg.threshold, group_threshold)
    execute(con, "candidate_pairs", examples=inputs.examples, threshold=low)
    execute(con, "candidate_sets", examples=inputs.examples)
    execute(con, "verified_candidates")
    insert_verified(con, "candidate_pairs_ordered", "candidate_chunk_sets", low, "verified_candidates_insert")
    near_pairs = 0
    if cfg.near:
        i, j = _edges(query(con, "near_pairs", threshold=cfg.threshold))
        near_pairs = int(i.size)
        if near_pairs:
            labels = components(n_examples, i, j)
            nodes = np.unique(np.concatenate([i, j]))
            with arrow_tables(con, clusters=pa.table({"idx": nodes, "cluster": labels[nodes]})):
                execute(con, "near_duplicates", threshold=cfg.threshold)
    counts = dict(query(con, "dup_counts").fetchall())
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


def split(con: duckdb.DuckDBPyConnection, n_examples: int, group_threshold: float, policy: EvalPolicy,
          per_task: bool) -> SplitStats:
    """Group-aware, stratified, seeded eval split (dedup.md §2.6); fills `placed`.

    Groups: the same session, the same normalized last prompt, near-duplicates at `group_threshold`
    (on the dedup banding: best effort, the leakage check after writing is the guarantee). Each
    task type gets `policy.target(its examples)` eval examples, filled with whole groups in the
    seeded order (the split key, a seeded xxh64, of each group's smallest request id), a group that
    would overshoot skipped for smaller ones.
    """
    links = query(con, "split_links").fetchnumpy()  # kind TINYINT, i and j BIGINT: int8 and int64 arrays
    session_links = int(np.count_nonzero(links["kind"] == 0))
    prompt_links = int(np.count_nonzero(links["kind"] == 1))
    # Grouping off (a threshold above 1) finds no near link: no Jaccard exceeds 1.
    ni, nj = _edges(query(con, "split_near_links", threshold=group_threshold))
    i, j = np.concatenate([links["i"], ni]), np.concatenate([links["j"], nj])
    labels = components(n_examples, i, j)
    nodes = np.unique(np.concatenate([i, j]))
    with arrow_tables(con, group_of=pa.table({"idx": nodes, "grp": labels[nodes]})):
        execute(con, "split_groups")
        groups, largest = query(con, "split_group_counts").fetchall()[0]
        sizes = dict(query(con, "split_task_examples").fetchall())
        targets = {task: policy.target(int(size)) for task, size in sizes.items()}
        taken: dict[str, int] = defaultdict(int)
        chosen: list[int] = []
        for grp, task, size in SQL.rows(con, "split_fill_order"):
            if taken[task] + size > targets[task]:  # full, or this group would overshoot: try smaller ones
                continue
            chosen.append(grp)
            taken[task] += size
        execute(con, "placed_table", per_task=per_task, eval_groups=chosen)
    return SplitStats(int(groups), int(largest), session_links, int(ni.size), prompt_links,
                      {str(t): int(v) for t, v in sorted(targets.items())})


_MASK64 = (1 << 64) - 1


def _line_digest(offset: int, line: bytes | memoryview, end: bytes = b"") -> int:
    """The hash of a line (of `line` and then `end`, the same as of the two joined) at `offset`."""
    if not end:
        return xxhash.xxh3_64_intdigest(line, seed=offset)
    digest = xxhash.xxh3_64(line, seed=offset)
    digest.update(end)
    return digest.intdigest()


@dataclass(frozen=True)
class WriteJob:
    """One bucket's records to write: its examples file and where each kept one goes (by value, so
    the task needs no database; the files it writes into are on the working directory)."""

    examples: str
    uids: list[int]
    rels: list[int]  # index into the task's shared list of relative paths
    offsets: list[int]


def write_bucket_records(out: Path, rels: list[str], job: WriteJob) -> dict[str, int]:
    """Write one bucket's kept records at their byte offsets (`os.pwritev`: tasks write disjoint
    ranges of the same files, in any order); returns the order-free digest of the lines it wrote per
    file (the sum of their hashes seeded by their offsets).

    A line is a view of the record column's UTF-8 buffer, written with its newline by one call: no
    Python string per record is made, encoded and joined (at 1 M requests, 6 GB of them)."""
    records = pq.read_table(job.examples, columns=["uid", "record"])
    place = dict(zip(job.uids, zip(job.rels, job.offsets, strict=True), strict=True))
    fds: dict[int, int] = {}
    digests: dict[int, int] = defaultdict(int)
    try:
        for batch in records.to_batches():
            column = batch.column(1)  # string: int32 offsets into one data buffer; never null
            ends = np.frombuffer(column.buffers()[1], dtype=np.int32)[column.offset : column.offset + len(column) + 1].tolist()
            data = memoryview(column.buffers()[2] or b"")
            for i, uid in enumerate(batch.column(0).to_pylist()):
                where = place.get(uid)
                if where is None:
                    continue
                rel, offset = where
                if rel not in fds:
                    fds[rel] = os.open(out / rels[rel], os.O_WRONLY)
                line = data[ends[i] : ends[i + 1]]
                os.pwritev(fds[rel], (line, _NEWLINE), offset)
                digests[rel] = (digests[rel] + _line_digest(offset, line, _NEWLINE)) & _MASK64
    finally:
        for fd in fds.values():
            os.close(fd)
    return {rels[r]: d for r, d in digests.items()}


_NEWLINE = b"\n"


def bucket_runs(rows: Iterable[pa.RecordBatch]) -> Iterator[tuple[int, pa.Table]]:
    """(bucket, its rows) of rows in `uid` order: a bucket's uids are bucket << 32 | position, so its
    rows are one run of the stream, which may span batches."""
    held: list[pa.RecordBatch] = []  # the rows of bucket `held_bucket` read so far
    held_bucket = -1
    for batch in rows:
        if not batch.num_rows:
            continue
        bucket = batch.column("uid").to_numpy() >> 32
        cuts = [0, *(np.flatnonzero(np.diff(bucket)) + 1).tolist(), batch.num_rows]
        for start, end in itertools.pairwise(cuts):
            if held and int(bucket[start]) != held_bucket:
                yield held_bucket, pa.Table.from_batches(held)
                held = []
            held_bucket = int(bucket[start])
            held.append(batch.slice(start, end - start))
    if held:
        yield held_bucket, pa.Table.from_batches(held)


def write_files(con: duckdb.DuckDBPyConnection, inputs: Inputs, out: Path, per_task: bool,
                written: dict[str, int], write: Callable[[list[str], Iterator[WriteJob], int], Iterator[dict[str, int]]],
                ) -> dict[str, dict[str, Any]]:
    """Write the JSONL files; returns {relative path: {split, task_type, examples, sha256 (set by
    `validate_written`)}}, and fills `written` with an order-free digest of each file's lines (the
    sum of their hashes seeded by their offsets) for `validate_written` to check.

    Every record goes straight to its byte offset (`placed.byte_offset`): the files are created at
    their final size here, then `write(rels, jobs, n_jobs)` runs `write_bucket_records` per bucket
    (executor tasks, in parallel): the files come out in line order with no sort of the records
    themselves, and a task's memory is one bucket's records.
    """
    if per_task:
        slugs = dict(query(con, "placed_task_slugs").fetchall())
        prefixes = {f"tasks/{s}/": t for s, t in slugs.items()}
    else:
        prefixes = {"": None}
    sizes = {rel: (int(n), int(size)) for rel, n, size in
             query(con, "placed_file_sizes").fetchall()}
    rels = {f"{p}{s}.jsonl" for p in prefixes for s in ("train", "eval")} | set(sizes)  # both always exist
    names = sorted(rels)
    for rel in names:
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.ftruncate(fd, sizes.get(rel, (0, 0))[1])
        finally:
            os.close(fd)

    rel_names = pa.array(names)

    def jobs() -> Iterator[WriteJob]:
        # `placed` streamed once in uid order, not queried and read once per bucket (2.7 s of the
        # driver's CPU at 1 M, beside the write tasks it feeds: 0.4 s now); no join holds records.
        for bucket, places in bucket_runs(batches(query(con, "records"))):
            yield WriteJob(str(inputs.example_file(bucket)), places.column("uid").to_pylist(),
                           pc.index_in(places.column("rel"), value_set=rel_names).to_pylist(),
                           places.column("byte_offset").to_pylist())

    digests: dict[str, int] = defaultdict(int)
    for part in write(names, jobs(), len(inputs.example_files())):
        for rel, d in part.items():
            digests[rel] = (digests[rel] + d) & _MASK64
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


READ_BLOCK = 16 << 20
_BLANK = frozenset(b" \t\n\r\x0b\x0c")  # what bytes.strip() removes


def file_digests(path: Path) -> tuple[str, int, int]:
    """(sha256 hex, order-free line digest as `write_bucket_records` sums it, non-blank lines) of a
    file, read in blocks of `READ_BLOCK`: the sha256 of a block runs in a second thread (hashlib
    releases the GIL) while this one hashes the block's lines through a view, no copy per line.
    Line by line (a read, a sha256 update and a strip copy each), this was 9 s of the driver's time
    for the 6.3 GB written at 1 M requests."""
    sha = hashlib.sha256()
    lines_digest = records = 0
    carry = b""  # the start of a line that continues in the next block
    position = 0  # file offset of the current block
    with open(path, "rb") as fh, ThreadPoolExecutor(1) as pool:
        hashing: Future[None] | None = None
        while block := fh.read(READ_BLOCK):
            if hashing is not None:
                hashing.result()
            hashing = pool.submit(sha.update, block)
            ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10).tolist()
            view = memoryview(block)
            start = 0
            if ends and carry:
                line = carry + block[: ends[0] + 1]
                lines_digest += _line_digest(position - len(carry), line)
                records += bool(line.strip())
                start, ends, carry = ends[0] + 1, ends[1:], b""
            for end in ends:
                lines_digest += _line_digest(position + start, view[start : end + 1])
                records += block[start] not in _BLANK or bool(block[start : end + 1].strip())
                start = end + 1
            carry += block[start:]
            position += len(block)
        if hashing is not None:
            hashing.result()
    if carry:  # a last line without its newline
        lines_digest += _line_digest(position - len(carry), carry)
        records += bool(carry.strip())
    return sha.hexdigest(), lines_digest & _MASK64, records


def validate_written(con: duckdb.DuckDBPyConnection, inputs: Inputs, out: Path, files: dict[str, dict[str, Any]],
                     written: dict[str, int]) -> dict[str, Any]:
    """Re-read every written file: its sha256 (into `files`) and a check that it holds exactly the
    records written (the leakage check and lineage were computed on those records). The target
    format's validator ran on every record in its bucket task (on the line as written, parsed back);
    the errors of the written ones are counted here."""
    checked = 0
    for rel, info in files.items():
        info["sha256"], lines_digest, records = file_digests(out / rel)
        checked += records
        if lines_digest != written.get(rel, 0):
            raise DatasetError(f"internal: `{out / rel}` does not read back as written; rerun `logaudit dataset`.")
    has_files = any((inputs.work / "validation").glob("*.parquet"))
    rows = query(con, "placed_errors", validation=inputs.validation).fetchall() if has_files else []
    invalid = int(rows[0][2]) if rows else 0
    return {"records_checked": checked, "invalid_records": invalid, "errors": {str(e): int(n) for e, n, _ in rows}}


def leakage(con: duckdb.DuckDBPyConnection, inputs: Inputs, cfg: dd.DedupConfig) -> dict[str, Any]:
    """Every eval record against every train record, as written: band-key candidates, exact Jaccard."""
    sides = dict(query(con, "placed_split_counts").fetchall())
    n_train, n_eval = int(sides.get("train", 0)), int(sides.get("eval", 0))
    result: dict[str, Any] = {"threshold": cfg.threshold, "eval_checked": n_eval, "train_indexed": n_train,
                              "pairs": 0, "examples": [], "lsh_params": [cfg.check_bands, cfg.check_rows]}
    if not n_train or not n_eval:
        return result
    execute(con, "leakage_pairs", examples=inputs.examples, threshold=cfg.threshold)
    execute(con, "leakage_sets", examples=inputs.examples)
    execute(con, "leaks_table")
    insert_verified(con, "leakage_pairs_ordered", "leakage_chunk_sets", cfg.threshold, "leaks_insert")
    result["pairs"] = int(query(con, "leaks_count").fetchall()[0][0])
    top = query(con, "leaks_examples")
    result["examples"] = [{"eval_index": int(i), "train_index": int(j), "jaccard": round(float(jac), 4)}
                          for i, j, jac in top.fetchall()]
    return result


def request_status(con: duckdb.DuckDBPyConnection) -> None:
    """Fill `status`: the outcome of every request."""
    execute(con, "request_status")
    missing = query(con, "status_missing").fetchall()[0]
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
