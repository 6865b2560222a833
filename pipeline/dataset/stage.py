"""Stage 3: build a fine-tuning dataset from the store: filter, redact, deduplicate, split, write.

    requests --filters--> survivors --session collapse--> examples --redact--> --exact/near dedup-->
        --group-aware split--> WORKDIR/dataset/{train,eval}.jsonl, lineage.parquet, manifest.json, dataset_card.md

`build_dataset(workdir, config)` is the API; `logaudit dataset WORKDIR` calls it. It reads the
store and, when present, `WORKDIR/audit/request_labels.parquet` (task types and the
regenerated/edited/feedback signals). Without labels it still runs: every example is task type
`unlabeled` and the label filters are skipped, which the manifest records under `labels`.

Out of core, in three steps (memory follows `rows_per_bucket` and the run's budget `[run] memory_mb`,
never the number of requests, and the files depend on neither):
  1. partition (`sql/partition.sql`, `bucket.write_buckets`, tasks over groups of date partitions): the store joined with the labels,
     split into buckets by a hash of how each conversation starts, so that every state of one
     conversation shares a bucket;
  2. per bucket (`bucket.build_bucket`, a pure function of its files, in a process pool): filters,
     session collapse, tokens, redaction, the rendered records and the keys the global steps need;
  3. global (`assemble`, DuckDB over the per-bucket Parquet): exact and near duplicates, the
     split, the files, their validation, the leakage check, request outcomes, lineage, manifest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import from_section
from pipeline.dataset import assemble
from pipeline.dataset import dedup as dd
from pipeline.dataset.bucket import (
    BucketParams,
    BucketSummary,
    JsonStats,
    add_json_stats,
    bucket_files,
    build_bucket,
    counting_json_stats,
    json_task_types,
    whitespace,
    write_buckets,
)
from pipeline.dataset.filters import DEDUP_REASONS, FILTERS, LABEL_FILTERS, REJECTED_TURN
from pipeline.dataset.targets import FORMATS
from pipeline.errors import DatasetError, MissingInputError
from pipeline.executor import (
    Executor,
    LocalExecutor,
    cycle_collector_paused,
    memory_share,
    processes_with_tasks,
)
from pipeline.money import Money
from pipeline.progress import StageProgress, stage_progress
from pipeline.tokens import encoding_name_for, is_approximate
from pipeline.workdir import versions
from pipeline.workdir.lock import holds_writer_lock
from pipeline.workdir.paths import workdir_paths
from pipeline.workdir.store import (
    connect_requests,
    current_version,
    date_partitions,
    has_requests,
    missing_store_message,
    requests_dir,
    requests_glob,
    store_identity,
)

PII_MODES = ("redact", "drop", "keep")
LABEL_COLUMNS = ("request_id", "task_type", "regenerated", "edited", "feedback_rating", "clean_example", "is_retry")
# A typed, empty labels file read beside the audit's (or alone without it), so the partition query
# always has the label columns it selects.
EMPTY_LABELS = pa.schema([("request_id", pa.string()), ("task_type", pa.string()), ("regenerated", pa.bool_()),
                          ("edited", pa.bool_()), ("feedback_rating", pa.float64())]).empty_table()
# The same for the audit's token counts of each request's new turn (audit/cache_requests.parquet).
EMPTY_TURN_COUNTS = pa.schema([("request_id", pa.string()), ("encoding", pa.string()), ("new_turn_key", pa.uint64()),
                               ("new_turn_tokens", pa.int32())]).empty_table()


@dataclass(frozen=True)
class DatasetConfig:
    format: str = "openai"  # openai | anthropic | trl | sharegpt (see targets.py)
    pii: str = "redact"  # redact (typed placeholders) | drop (the request) | keep (count only)
    per_task: bool = False  # one train/eval pair per task type under dataset/tasks/<task>/
    filters: tuple[str, ...] = tuple(f for f in FILTERS if f != "pii")  # ordered; remove a name to disable it
    seed: int = 13  # seeds the eval split order
    # Eval split per task type (checklist: a 200-500 example test set; hold out at least 20% when data
    # is small): at least `eval_fraction` and at least `eval_min_per_task`, at most `eval_cap_per_task`,
    # and never more than `eval_max_fraction` of a small type. A type below `eval_min_per_task` is warned about.
    eval_fraction: float = 0.20
    eval_min_per_task: int = 200
    eval_cap_per_task: int = 500
    eval_max_fraction: float = 0.30
    split_group_threshold: float = 0.6  # Jaccard joining examples into one split group; > 1 disables
    target_model: str = "gpt-4.1-mini"  # picks the tokenizer that counts example tokens
    max_example_tokens: int = 65_536  # per-example limit of the target (OpenAI: 65,536 for 4o/4.1-mini)
    price_per_million_training_tokens: float = 5.00  # USD; gpt-4.1-mini SFT list price
    epochs: int = 0  # 0 = OpenAI's default rule (3, adjusted so examples x epochs is in [100, 25000])
    refusal_prefix_chars: int = 300  # how far into an answer a refusal phrase may start
    json_task_min_share: float = 0.8  # a task type whose answers are JSON at least this often is a JSON task
    dropped_sample_size: int = 10  # dropped request ids listed per filter in the manifest
    # Out of core: the store is processed one bucket (a hash of the conversation start) at a time;
    # a bucket's memory is about 30 KB per request, so this bounds a worker's memory. Outputs do
    # not depend on it, nor on `workers`.
    rows_per_bucket: int = 2_000
    workers: int = 2  # processes for the per-bucket step when called alone (1 = in this process); `run` uses [run] workers
    # DuckDB's limit for the global steps (they spill beyond it); None = the run budget's share for
    # a driver beside the write tasks ([run] memory_mb, pipeline.executor.memory_share), as every task gets.
    memory_limit: str | None = None
    dedup: dd.DedupConfig = field(default_factory=dd.DedupConfig)
    money: Money = field(default_factory=Money)  # the reporting currency, from [report] (pipeline/money.py)

    @classmethod
    def from_toml(cls, config: dict[str, Any], **overrides: Any) -> DatasetConfig:
        """`[dataset]` and `[dataset.dedup]` of a TOML config, then CLI overrides (None = not given)."""
        section = dict(config.get("dataset", {}) if isinstance(config.get("dataset"), dict) else {})
        section.pop("dedup", None)
        if "filters" in section:
            section["filters"] = tuple(section["filters"])
        base = from_section(cls, {"dataset": section}, "dataset")
        dedup_cfg = from_section(dd.DedupConfig, config, "dataset.dedup")
        return dataclasses.replace(base, dedup=dedup_cfg, money=Money.from_config(config),
                                   **{k: v for k, v in overrides.items() if v is not None})


@dataclass(frozen=True)
class DatasetResult:
    out_dir: Path
    manifest: dict[str, Any]

    def summary(self) -> str:
        m = self.manifest
        c = m["counts"]
        drops = ", ".join(f"{k} {v}" for k, v in c["dropped"].items() if v)
        lines = [
            f"Dataset written to {self.out_dir}/ ({m['config']['format']} format)",
            f"  requests: {c['requests_in']} in = {c['requests_kept']} kept + {c['requests_dropped']} dropped"
            + (f" ({drops})" if drops else ""),
            f"  examples: {c['train']} train + {c['eval']} eval "
            f"({c['examples_built']} built, {c['duplicates']} duplicates, {c['near_duplicates']} near-duplicates removed)",
            f"  tokens: {m['tokens']['train']} train; estimated training cost "
            f"{m['estimate']['training_cost']:,.2f} {m['estimate']['currency']} for {m['estimate']['epochs']} epochs"
            + (" (approximate: see the card)" if m["estimate"]["approximate"] else ""),
            f"  secrets/PII {m['pii']['mode']}: {sum(m['pii']['found'].values())} found; "
            f"leakage pairs (eval~train, Jaccard >= {m['leakage']['threshold']}): {m['leakage']['pairs']}; "
            f"invalid records: {m['validation']['invalid_records']}",
        ]
        short = [t for t, e in m["split"]["eval_per_task"].items() if e["warning"]]
        if short:
            lines.append(f"  eval: {len(short)} task type(s) below {m['config']['eval_min_per_task']} eval examples "
                         f"({', '.join(short[:5])}{'…' if len(short) > 5 else ''}): see the card")
        if m["rejected_turns"]["examples_dropped"]:
            lines.append(f"  {m['rejected_turns']['examples_dropped']} example(s) with a rejected earlier answer dropped "
                         f"(the {m['config']['format']} format has no per-turn weight)")
        if not m["labels"]["present"]:
            lines.append("  note: no audit/request_labels.parquet; regenerated/edited filters skipped (run `logaudit audit`)")
        return "\n".join(lines)


@holds_writer_lock
def build_dataset(workdir: Path, config: DatasetConfig | dict[str, Any] | None = None,
                  executor: Executor | None = None) -> DatasetResult:
    """Filter, redact, deduplicate and split the store into `WORKDIR/dataset/`.

    `config` is a `DatasetConfig` or the parsed TOML settings (its `[dataset]` section is read).

    The per-bucket passes are tasks on `executor` (default: a local pool of `workers` processes).
    Spawned worker processes need the usual `if __name__ == "__main__":` guard in a script calling
    this (or `workers = 1`). Intermediate files live in `WORKDIR/.stages/dataset/tmp-work-<run>/`
    and are removed at the end (or by the next run, when this one is killed); on a multi-machine
    Ray cluster WORKDIR must be reachable by every node. The output is a new version switched in whole.
    """
    cfg = DatasetConfig.from_toml(config) if isinstance(config, dict) else (config or DatasetConfig())
    _check_config(cfg)
    workdir = Path(workdir)
    timings: dict[str, float] = {}
    out_dir = workdir_paths(workdir).view("dataset")  # the link to the version committed below
    _remove_legacy_leftovers(workdir)
    audit_version = versions.read_pointer(versions.stage_root(workdir, "audit"))
    inputs = {"audit": audit_version.name} if audit_version is not None else {}
    own = executor is None
    pool = LocalExecutor(cfg.workers) if executor is None else executor
    try:
        with versions.building(workdir, "dataset", store=store_identity(workdir), inputs=inputs) as tmp_dir:
            work = versions.work_folder(workdir, "dataset")
            try:
                manifest = _build(workdir, cfg, work, tmp_dir, timings, pool)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    finally:
        if own:
            pool.close()
    return DatasetResult(out_dir, manifest)


def _build(workdir: Path, cfg: DatasetConfig, work: Path, tmp_dir: Path, timings: dict[str, float],
           executor: Executor) -> dict[str, Any]:
    # One bar: a step per bucket (the long, parallel part) plus the global steps, so the ETA covers both.
    with stage_progress("dataset", total=None, unit="step") as bar:
        return _build_steps(workdir, cfg, work, tmp_dir, timings, bar, executor)


GLOBAL_STEPS = 4  # dedup, split, write + verify, lineage + manifest


def _build_steps(workdir: Path, cfg: DatasetConfig, work: Path, tmp_dir: Path, timings: dict[str, float],
                 bar: StageProgress, executor: Executor) -> dict[str, Any]:
    t = time.perf_counter()
    bar.note("partition")
    labels_info = _labels_info(workdir)
    encoding = encoding_name_for(cfg.target_model)
    buckets, stats = _partition(workdir, work, cfg, Path(labels_info["path"]) if labels_info["present"] else None,
                                executor)
    timings["partition"] = time.perf_counter() - t
    bar.set_total(len(buckets) + GLOBAL_STEPS)
    bar.note(f"{len(buckets)} bucket(s)")

    # --- per bucket: filters, session collapse, tokens, redaction, dedup features ----------------
    t = time.perf_counter()
    active = tuple(f for f in cfg.filters if labels_info["present"] or f not in LABEL_FILTERS)
    if cfg.pii == "drop" and "pii" not in active:
        active = (*active, "pii")
    folders = [bucket_files(work / "rows" / f"bucket={b}") for b in buckets]
    params = BucketParams(
        format=cfg.format, pii=cfg.pii, active_filters=active, max_example_tokens=cfg.max_example_tokens,
        refusal_prefix_chars=cfg.refusal_prefix_chars, json_task_types=json_task_types(stats, cfg.json_task_min_share),
        encoding=encoding, dedup=cfg.dedup, seed=cfg.seed,
    )
    summaries = []
    for summary in executor.map(_bucket_task, list(zip(folders, buckets, strict=True)), shared=(work, params),
                                label="dataset.buckets", total=len(buckets), show_progress=False):
        summaries.append(summary)
        bar.advance()
    shutil.rmtree(work / "rows", ignore_errors=True)
    timings["buckets"] = time.perf_counter() - t

    # --- global: dedup, split, write, verify, lineage --------------------------------------------
    t = time.perf_counter()
    inputs = assemble.Inputs(work)
    global_limit = cfg.memory_limit or memory_share(executor.memory_mb, processes_with_tasks(executor))
    con = assemble.open_work_db(work / "global.duckdb", global_limit, threads=2)
    try:
        assemble.load_tables(con, inputs)
        n_examples = _count(con, "SELECT count(*) FROM ex")
        bar.note("dedup")
        dedup = assemble.deduplicate(con, inputs, cfg.dedup, cfg.split_group_threshold, n_examples)
        timings["dedup"] = time.perf_counter() - t
        bar.advance()
        bar.note("split")

        t = time.perf_counter()
        split_stats = assemble.split(con, n_examples, cfg.split_group_threshold, eval_policy(cfg), cfg.per_task)
        timings["split"] = time.perf_counter() - t
        bar.advance()
        bar.note("write + verify")

        t = time.perf_counter()
        written: dict[str, int] = {}
        def write(rels: list[str], jobs: Any, n_jobs: int) -> Any:
            return executor.map(_write_task, jobs, shared=(tmp_dir, rels), label="dataset.write", total=n_jobs,
                                show_progress=False)

        # The leakage check reads the examples, not the files: it runs on a connection of its own
        # while the pool writes the files (a disk-bound step) and the driver verifies them.
        leakage_con = con.cursor()
        try:
            with ThreadPoolExecutor(1, thread_name_prefix="dataset-leakage") as side:  # waits for it on any exit
                leakage_run = side.submit(assemble.leakage, leakage_con, inputs, cfg.dedup)
                files = assemble.write_files(con, inputs, tmp_dir, cfg.per_task, written, write)
                validation = assemble.validate_written(con, inputs, tmp_dir, files, written)
                leakage = leakage_run.result()
        finally:
            leakage_con.close()
        timings["write_verify"] = time.perf_counter() - t
        bar.advance()
        bar.note("lineage + manifest")

        t = time.perf_counter()
        assemble.request_status(con)
        assemble.write_lineage(con, inputs, tmp_dir / "lineage.parquet")
        manifest = _manifest(con, workdir, cfg, active, labels_info, dedup, split_stats, files, validation, leakage,
                             summaries, encoding)
        manifest["execution"] = {"buckets": len(buckets), "executor": executor.name,
                                 "workers": min(executor.workers, len(buckets))}
        timings["lineage_manifest"] = time.perf_counter() - t
        bar.advance()
    finally:
        con.close()
    manifest["timings_s"] = {k: round(v, 3) for k, v in timings.items()}
    (tmp_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
    (tmp_dir / "dataset_card.md").write_text(_card(manifest), encoding="utf-8")
    return manifest


# --- loading and partitioning ----------------------------------------------------------------------


def _check_config(cfg: DatasetConfig) -> None:
    if cfg.format not in FORMATS:
        raise DatasetError(f"Unknown dataset format `{cfg.format}`. Choose one of: {', '.join(FORMATS)}.")
    if cfg.pii not in PII_MODES:
        raise DatasetError(f"Unknown PII mode `{cfg.pii}`. Choose one of: {', '.join(PII_MODES)}.")
    unknown = [f for f in cfg.filters if f not in FILTERS]
    if unknown:
        raise DatasetError(f"Unknown filter(s) {', '.join(unknown)} in [dataset] filters. Known: {', '.join(FILTERS)}.")
    if not 0 <= cfg.eval_fraction <= cfg.eval_max_fraction < 1:
        raise DatasetError(f"`eval_fraction` ({cfg.eval_fraction}) and `eval_max_fraction` ({cfg.eval_max_fraction}) "
                           "must satisfy 0 <= eval_fraction <= eval_max_fraction < 1.")
    if not 0 <= cfg.eval_min_per_task <= cfg.eval_cap_per_task:
        raise DatasetError("[dataset] `eval_min_per_task` must be between 0 and `eval_cap_per_task`.")
    if cfg.dedup.bands * cfg.dedup.rows > cfg.dedup.num_perm or cfg.dedup.check_bands * cfg.dedup.check_rows > cfg.dedup.num_perm:
        raise DatasetError("[dataset.dedup] bands x rows must not exceed num_perm.")
    if cfg.rows_per_bucket < 1 or cfg.workers < 1:
        raise DatasetError("[dataset] `rows_per_bucket` and `workers` must be at least 1.")


def _labels_info(workdir: Path) -> dict[str, Any]:
    path = workdir_paths(workdir).audit_table("request_labels")
    if not path.is_file():
        return {"present": False, "path": str(path), "columns": []}
    names = pq.read_schema(path).names
    if "request_id" not in names:
        raise DatasetError(f"`{path}` has no `request_id` column; re-run `logaudit audit`.")
    columns = [c for c in LABEL_COLUMNS if c in names]
    return {"present": True, "path": str(path), "columns": columns, "sha256": _sha256(path)}


def _turn_counts_file(workdir: Path) -> Path | None:
    """audit/cache_requests.parquet when it holds the new turns' token counts (an audit before they
    were added does not: every text is then tokenized here)."""
    path = workdir_paths(workdir).audit_table("cache_requests")
    if not path.is_file() or not set(EMPTY_TURN_COUNTS.column_names) <= set(pq.read_schema(path).names):
        return None
    return path


def _task_labels(workdir: Path) -> dict[str, str]:
    """Human-readable task-type labels from audit/task_types.parquet, when the audit wrote it."""
    path = workdir_paths(workdir).audit_table("task_types")
    if not path.is_file() or not {"task_type", "label"} <= set(pq.read_schema(path).names):
        return {}
    return {r["task_type"]: r["label"] or "" for r in pq.read_table(path, columns=["task_type", "label"]).to_pylist()}


@dataclass(frozen=True)
class PartitionParams:
    """What every partition task shares (paths on the filesystem every worker reaches, as the bucket
    and write tasks' `work` folder: docs/scaling.md)."""

    rows: Path  # work/rows: the buckets' folders
    label_files: tuple[str, ...]
    turn_count_files: tuple[str, ...]
    buckets: int
    whitespace: str
    memory_limit: str


def _partition(workdir: Path, work: Path, cfg: DatasetConfig, labels: Path | None,
               executor: Executor) -> tuple[list[int], JsonStats]:
    """Write the store (with labels) to `work/rows/bucket=K/`, one folder per conversation bucket:
    one task per group of consecutive date partitions (`_partition_jobs`), each writing its own part
    files into the buckets it fills. A bucket's reader sorts its rows (`bucket._read_rows`), so neither the
    tasks' order nor their number changes a bucket. Returns the buckets filled and the rows'
    `json_stats`, counted as they pass (sums: the same whatever the tasks)."""
    if not has_requests(workdir):
        raise MissingInputError(missing_store_message(workdir))
    label_files = _with_empty(labels, EMPTY_LABELS, work / "no_labels.parquet")
    turn_count_files = _with_empty(_turn_counts_file(workdir), EMPTY_TURN_COUNTS, work / "no_turn_counts.parquet")
    partitions = [(name, [(str(f), pq.read_metadata(f).num_rows) for f in files])
                  for name, files in date_partitions(workdir)]
    n_rows = sum(n for _, files in partitions for _, n in files)
    params = PartitionParams(
        rows=work / "rows", label_files=label_files, turn_count_files=turn_count_files,
        buckets=max(1, math.ceil(n_rows / cfg.rows_per_bucket)),
        whitespace=whitespace(), memory_limit=memory_share(executor.memory_mb, processes_with_tasks(executor)),
    )
    jobs = _partition_jobs(partitions, n_rows, executor.workers)
    filled: set[int] = set()
    stats: JsonStats = {}
    for buckets, part_stats in executor.map(_partition_task, jobs, shared=params, label="dataset.partition",
                                            total=len(jobs), show_progress=False):
        filled.update(buckets)
        add_json_stats(stats, part_stats)
    return sorted(filled), stats


def _with_empty(path: Path | None, empty: pa.Table, empty_path: Path) -> tuple[str, ...]:
    """An audit table the partition query reads (when there is one) beside a typed empty file, so
    the query always has the columns it selects (`read_parquet(..., union_by_name = true)`)."""
    pq.write_table(empty, empty_path)
    return (str(path), str(empty_path)) if path else (str(empty_path),)


def _partition_jobs(partitions: list[tuple[str, list[tuple[str, int]]]], n_rows: int,
                    workers: int) -> list[tuple[str, tuple[str, ...]]]:
    """Consecutive date partitions in `workers` groups of about equal rows: one task per worker, not
    per day, because every task writes a part file into each bucket it fills (a task per day at 1 M
    requests would leave each of 500 buckets in 60 files of ~30 rows, and reading them cost more than
    the parallel partitioning saved: measured at 62.5k, 15.7 s -> 21.1 s for partition + buckets)."""
    groups = max(1, min(workers, len(partitions)))
    jobs: list[tuple[str, tuple[str, ...]]] = []
    files: list[str] = []
    done = 0
    for name, parts in partitions:
        files.extend(f for f, _ in parts)
        done += sum(n for _, n in parts)
        if done * groups >= n_rows * (len(jobs) + 1) or name == partitions[-1][0]:
            jobs.append((f"group{len(jobs):04d}", tuple(files)))
            files = []
    return jobs


def _partition_task(params: PartitionParams, job: tuple[str, tuple[str, ...]]) -> tuple[list[int], JsonStats]:
    """Task: a group of date partitions' rows (partition.sql, one DuckDB thread) into the bucket
    folders, as `<group>-NNNNN.arrow` files; returns the buckets it filled and the rows' `json_stats`."""
    name, files = job
    with tempfile.TemporaryDirectory(prefix="logaudit-partition-") as tmp:
        con = connect_requests(list(files), memory_limit=params.memory_limit, threads=1,
                               temp_directory=Path(tmp) / "duckdb_tmp")
        try:
            con.execute("SET preserve_insertion_order = false")  # each bucket is sorted by its reader
            assemble.execute(con, "rtrim_fast_macro")
            assemble.execute(con, "strip_prefix_macro")
            rows = assemble.query(con, "partition", whitespace=params.whitespace, buckets=params.buckets,
                                  label_files=list(params.label_files), turn_count_files=list(params.turn_count_files))
            stats: JsonStats = {}
            buckets = write_buckets(counting_json_stats(rows.to_arrow_reader(2048), stats), params.rows, prefix=name)
            return buckets, stats
        finally:
            con.close()
            pa.default_memory_pool().release_unused()  # else Arrow keeps the batches' pages for the next task


def _count(con: Any, sql: str) -> int:
    rows = con.execute(sql).fetchall()
    row = rows[0] if rows else None
    return int(row[0]) if row and row[0] is not None else 0


@cycle_collector_paused
def _bucket_task(shared: tuple[Path, BucketParams], job: tuple[Sequence[Path], int]) -> BucketSummary:
    work, params = shared
    files, bucket = job
    return build_bucket(files, bucket, work, params)


def _write_task(shared: tuple[Path, list[str]], job: assemble.WriteJob) -> dict[str, int]:
    out, rels = shared
    return assemble.write_bucket_records(out, rels, job)


# --- manifest and card -----------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _store_fingerprint(workdir: Path) -> dict[str, Any]:
    files = sorted(requests_dir(workdir).glob("*/*.parquet"))
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.parent.name}/{f.name}:{f.stat().st_size}\n".encode())
    cur = current_version(workdir)
    return {"store_version": cur.name if cur else None, "parquet_files": len(files),
            "files_sha256": h.hexdigest(), "glob": requests_glob(workdir)}


def _epochs(cfg: DatasetConfig, n_train: int) -> int:
    """OpenAI's default epoch rule as the data-prep cookbook states it."""
    if cfg.epochs:
        return cfg.epochs
    epochs, lo, hi = 3, 100, 25_000
    if n_train and n_train * epochs < lo:
        epochs = min(25, -(-lo // n_train))
    elif n_train * epochs > hi:
        epochs = max(1, hi // n_train)
    return epochs


def _manifest(con: Any, workdir: Path, cfg: DatasetConfig, active: tuple[str, ...], labels_info: dict[str, Any],
              dedup: assemble.DedupOutcome, split_stats: assemble.SplitStats, files: dict[str, dict[str, Any]],
              validation: dict[str, Any], leakage: dict[str, Any], summaries: list[BucketSummary],
              encoding: str) -> dict[str, Any]:
    """The manifest from DuckDB aggregates over `status`, `ex` and `placed`."""
    reason_order = [*active, REJECTED_TURN, *DEDUP_REASONS]
    outcomes = dict(con.sql("SELECT status, count(*) FROM status GROUP BY status").fetchall())
    dropped = {r: int(n) for r, n in outcomes.items() if r != "kept"}
    filtered = dict(con.sql("SELECT reason, count(*) FROM req WHERE reason IS NOT NULL GROUP BY reason").fetchall())
    n_in = sum(int(n) for n in outcomes.values())
    n_examples = _count(con, "SELECT count(*) FROM ex")
    sides = dict(assemble.query(con, "placed_split_counts").fetchall())
    n_train, n_eval = int(sides.get("train", 0)), int(sides.get("eval", 0))
    samples = {r: list(ids) for r, ids in
               assemble.query(con, "dropped_samples", size=cfg.dropped_sample_size).fetchall()}
    per_task = _per_task(con)
    tok = assemble.query(con, "token_totals", max_tokens=cfg.max_example_tokens).fetchall()[0]
    tokens_train, tokens_eval, train_assistant, max_example, n_train_tokens = (int(v) for v in tok)
    epochs = _epochs(cfg, n_train)
    billed = n_train_tokens * epochs
    sig_seconds = sum(s.signature_seconds for s in summaries)
    pii_found: dict[str, int] = {}
    for s in summaries:
        for kind, n in s.pii_found.items():
            pii_found[kind] = pii_found.get(kind, 0) + n
    n_dup, n_near = dedup.duplicates, dedup.near_duplicates
    counts: dict[str, Any] = {
        "requests_in": n_in,
        "requests_kept": int(outcomes.get("kept", 0)),
        "requests_dropped": sum(dropped.values()),
        "dropped": {r: dropped.get(r, 0) for r in reason_order if r in dropped or r in active},
        "examples_built": n_examples,
        "duplicates": n_dup,
        "near_duplicates": n_near,
        "examples_kept": n_train + n_eval,
        "train": n_train,
        "eval": n_eval,
    }
    if counts["requests_in"] != counts["requests_kept"] + counts["requests_dropped"]:
        raise DatasetError("internal: request counts do not reconcile (in != kept + dropped).")
    holding = sum(s.rejected_turn_examples for s in summaries)
    weighted = FORMATS[cfg.format].supports_weight
    rejected_examples = 0 if weighted else holding
    stages = [
        {"stage": "load", "requests": n_in},
        *[{"stage": f"filter:{r}", "dropped": int(filtered.get(r, 0))} for r in active],
        {"stage": "session_collapse",
         "requests": n_in - sum(int(n) for r, n in filtered.items() if r != REJECTED_TURN),
         "examples": n_examples + rejected_examples},
        {"stage": "rejected_turns", "dropped": int(filtered.get(REJECTED_TURN, 0)), "dropped_examples": rejected_examples},
        {"stage": "dedup:exact", "dropped_examples": n_dup},
        {"stage": "dedup:near", "dropped_examples": n_near},
        {"stage": "split", "train": n_train, "eval": n_eval},
    ]
    return {
        "schema_version": 1,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "workdir": str(workdir),
        "config": _jsonable(dataclasses.asdict(cfg)),
        "seed": cfg.seed,
        "inputs": {"store": _store_fingerprint(workdir), "labels": labels_info},
        "labels": {
            "present": labels_info["present"],
            "skipped_filters": [f for f in cfg.filters if f in LABEL_FILTERS and not labels_info["present"]],
            "note": None if labels_info["present"] else
            "audit/request_labels.parquet not found: task types are `unlabeled`, regenerated/edited filters skipped",
        },
        "filters_order": list(active),
        "counts": counts,
        "rejected_turns": {
            "examples_with_rejected_turn": holding,
            "examples_dropped": rejected_examples,
            "requests_dropped": int(filtered.get(REJECTED_TURN, 0)),
            "policy": (f"the {cfg.format} format carries per-turn weights: a rejected earlier answer kept as context "
                       "has weight 0 and is never a training target") if weighted else
                      (f"the {cfg.format} format has no per-turn weight: an example holding a rejected earlier answer "
                       "is dropped, never trained on"),
        },
        "stages": stages,
        "dropped_samples": samples,
        "per_task": per_task,
        "task_labels": _task_labels(workdir),
        "dedup": {
            "duplicate_rate": round(n_dup / n_examples, 4) if n_examples else 0.0,
            "near_duplicate_rate": round(n_near / n_examples, 4) if n_examples else 0.0,
            "near_pairs_verified": dedup.near_pairs_verified,
            "method": f"word {cfg.dedup.ngram}-gram shingles of user+assistant text; MinHash num_perm="
                      f"{cfg.dedup.num_perm} (datasketch affine32, seed {cfg.dedup.seed}, xxh32 shingle hashes); "
                      f"MinHashLSH params=({cfg.dedup.bands}, {cfg.dedup.rows}); exact Jaccard >= {cfg.dedup.threshold}",
            "signature_seconds": round(sig_seconds, 4),
            "signature_docs_per_second": round(n_examples / sig_seconds) if sig_seconds > 0 else None,
        },
        "split": {"groups": split_stats.groups, "largest_group": split_stats.largest_group,
                  "session_links": split_stats.session_links, "near_links": split_stats.near_links,
                  "prompt_links": split_stats.prompt_links, "group_threshold": cfg.split_group_threshold,
                  "eval_policy": dataclasses.asdict(eval_policy(cfg)),
                  "eval_per_task": eval_sizes(per_task, split_stats.eval_targets, cfg)},
        "leakage": leakage,
        "validation": validation,
        "pii": {"mode": cfg.pii, "found": dict(sorted(pii_found.items())),
                "examples_with_findings": _count(con, "SELECT count(*) FROM ex WHERE redactions > 0")},
        "tokens": {
            "encoding": encoding,
            "train": tokens_train,
            "eval": tokens_eval,
            "train_assistant": train_assistant,
            "max_example": max_example,
            # new turns counted once, by the audit (cache_requests.new_turn_*), not tokenized again here
            "counts_from_audit": sum(s.audit_token_counts for s in summaries),
        },
        "estimate": {
            "epochs": epochs,
            "billed_training_tokens": billed,
            "price_per_million_training_tokens": cfg.price_per_million_training_tokens,
            "training_cost_usd": round(billed / 1e6 * cfg.price_per_million_training_tokens, 4),
            "training_cost": round(cfg.money.convert(billed / 1e6 * cfg.price_per_million_training_tokens) or 0.0, 2),
            "currency": cfg.money.currency,
            "usd_to_currency": cfg.money.usd_to_currency,
            "target_model": cfg.target_model,
            **_estimate_basis(cfg, encoding),
        },
        "files": files,
    }


def eval_policy(cfg: DatasetConfig) -> assemble.EvalPolicy:
    return assemble.EvalPolicy(cfg.eval_fraction, cfg.eval_min_per_task, cfg.eval_cap_per_task, cfg.eval_max_fraction)


def eval_sizes(per_task: dict[str, dict[str, int]], targets: dict[str, int], cfg: DatasetConfig) -> dict[str, Any]:
    """Per task type: eval examples wanted and achieved, and a warning where a type cannot reach the
    guides' minimum test set (its eval figures are then indicative only)."""
    out: dict[str, Any] = {}
    for task, counts in per_task.items():
        n = counts.get("train", 0) + counts.get("eval", 0)
        achieved = counts.get("eval", 0)
        entry: dict[str, Any] = {"examples": n, "target": targets.get(task, 0), "eval": achieved,
                                 "share": round(achieved / n, 4) if n else None, "warning": None}
        if n and achieved < cfg.eval_min_per_task:
            entry["warning"] = (f"{achieved} eval examples ({achieved / n:.0%} of {n}), below the "
                                f"{cfg.eval_min_per_task}-example test set the guides ask for: judge this task type "
                                "on more data")
        out[task] = entry
    return out


def _estimate_basis(cfg: DatasetConfig, encoding: str) -> dict[str, Any]:
    """Whether the training-cost estimate counts and prices the way the target is billed. Exact only
    for the OpenAI format with an OpenAI target model (its tokenizer is public and its price is the
    configured one); any other family is counted with an OpenAI encoding, so it is approximate."""
    openai_target = not is_approximate(cfg.target_model)
    exact = cfg.format == "openai" and openai_target
    family = {"openai": "OpenAI", "anthropic": "Claude (Bedrock)", "trl": "an open model (TRL)",
              "sharegpt": "an open model (ShareGPT)"}[cfg.format]
    if exact:
        note = f"{cfg.target_model}: tokens counted with its tokenizer ({encoding}), its training price per 1M tokens"
    else:
        note = (f"approximate: a {cfg.format} dataset trains {family}, but tokens were counted with {encoding} and "
                f"priced at {cfg.price_per_million_training_tokens} USD/1M for {cfg.target_model}; set [dataset] "
                "target_model and price_per_million_training_tokens for your target")
    return {"approximate": not exact, "basis": note}


def _per_task(con: Any) -> dict[str, dict[str, int]]:
    """Per task type counts, keys in the order they first occur (requests, examples, then splits)."""
    out: dict[str, dict[str, int]] = {}
    rel = assemble.query(con, "per_task")
    for row in rel.fetchall():
        r = dict(zip(rel.columns, row, strict=True))
        entry: dict[str, int] = {"requests_in": int(r["requests_in"])}
        outcome_keys = sorted(
            (pos, key) for key, pos in (("requests_kept", r["first_kept"]), ("requests_dropped", r["first_dropped"]))
            if pos is not None
        )
        for _, key in outcome_keys:
            entry[key] = int(r[key])
        if r["examples_built"]:
            entry["examples_built"] = int(r["examples_built"])
        splits = ("train", "eval") if r["first_split"] != "eval" else ("eval", "train")
        for s in splits:
            if r[s]:
                entry[s] = int(r[s])
                entry[f"{s}_tokens"] = int(r[f"{s}_tokens"])
        out[str(r["task_type"])] = entry
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _card(m: dict[str, Any]) -> str:
    template = Template(Path(__file__).with_name("card.md").read_text(encoding="utf-8"))
    c = m["counts"]
    filters = "\n".join(f"| `{r}` | {n} | {', '.join(m['dropped_samples'].get(r, [])[:3])} |" for r, n in c["dropped"].items())
    tasks = "\n".join(
        f"| `{t}` | {m['task_labels'].get(t, '').replace('|', '/')} | {v.get('requests_in', 0)} | {v.get('examples_built', 0)} "
        f"| {v.get('train', 0)} | {v.get('eval', 0)} of {m['split']['eval_per_task'].get(t, {}).get('target', 0)} "
        f"| {v.get('train_tokens', 0)} |"
        for t, v in m["per_task"].items()
    )
    warnings = "\n".join(f"- `{t}`: {e['warning']}" for t, e in m["split"]["eval_per_task"].items() if e["warning"])
    pii = ", ".join(f"{k} {v}" for k, v in m["pii"]["found"].items()) or "none"
    files = "\n".join(f"| `{rel}` | {f['split']} | {f['examples']} |" for rel, f in m["files"].items())
    validation = m["validation"]
    return template.substitute(
        format=m["config"]["format"],
        created_at=m["created_at"],
        requests_in=c["requests_in"],
        requests_kept=c["requests_kept"],
        requests_dropped=c["requests_dropped"],
        examples_built=c["examples_built"],
        train=c["train"],
        eval=c["eval"],
        filters_table=filters,
        tasks_table=tasks,
        files_table=files,
        duplicates=c["duplicates"],
        near_duplicates=c["near_duplicates"],
        duplicate_rate=f"{m['dedup']['duplicate_rate']:.1%}",
        near_duplicate_rate=f"{m['dedup']['near_duplicate_rate']:.1%}",
        dedup_method=m["dedup"]["method"],
        pii_mode=m["pii"]["mode"],
        pii_found=pii,
        leakage_pairs=m["leakage"]["pairs"],
        leakage_threshold=m["leakage"]["threshold"],
        split_groups=m["split"]["groups"],
        seed=m["seed"],
        eval_fraction=f"{m['config']['eval_fraction']:.0%}",
        eval_cap=m["config"]["eval_cap_per_task"],
        eval_min=m["config"]["eval_min_per_task"],
        eval_max_fraction=f"{m['config']['eval_max_fraction']:.0%}",
        eval_warnings=("Task types whose eval set is smaller than the guides ask for:\n\n" + warnings) if warnings
        else f"Every task type reached {m['config']['eval_min_per_task']} eval examples.",
        records_checked=validation["records_checked"],
        invalid_records=validation["invalid_records"],
        train_tokens=m["tokens"]["train"],
        encoding=m["tokens"]["encoding"],
        epochs=m["estimate"]["epochs"],
        billed_tokens=m["estimate"]["billed_training_tokens"],
        price=m["estimate"]["price_per_million_training_tokens"],
        cost=f"{m['estimate']['training_cost']:,.2f} {m['estimate']['currency']}",
        cost_usd=f"{m['estimate']['training_cost_usd']:,.2f}",
        estimate_basis=m["estimate"]["basis"],
        rejected_turns=m["rejected_turns"]["policy"] + (
            f": {m['rejected_turns']['examples_dropped']} example(s) dropped "
            f"({m['rejected_turns']['requests_dropped']} request(s) in no other example)"
            if m["rejected_turns"]["examples_dropped"] else
            f" ({m['rejected_turns']['examples_with_rejected_turn']} example(s) hold such a turn)"),
        target_model=m["estimate"]["target_model"],
        labels_note=m["labels"]["note"] or "Task types and regeneration/edit/feedback signals from `audit/request_labels.parquet`.",
    )


def _remove_legacy_leftovers(workdir: Path) -> None:
    """Temporary folders that runs before versioned outputs left when killed (`.dataset.tmp-PID`)."""
    for p in [*workdir.glob(".dataset.tmp-*"), *workdir.glob(".dataset.work-*"), *workdir.glob(".dataset.old-*")]:
        if not versions.run_alive(p.name.rsplit("-", 1)[-1]):
            shutil.rmtree(p, ignore_errors=True)
