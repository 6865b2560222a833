"""Benchmark steps, each a function run in its own process by `bench.measure.run_child`.

Every step returns a JSON-able dict: `records` / `bytes` where meaningful (throughput is computed
from them and the child's wall time), any inner timings, and `self_usage()` figures last. Steps
that compare two ways of doing one thing time only the work both share (`inner_s`), so process
start-up and imports, paid once per child, do not blur the ratio.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import time
from pathlib import Path
from typing import Any

from bench.measure import self_usage


def _cpu() -> float:
    """CPU seconds of this process and its finished children: `inner_cpu_s` is the work's CPU time,
    the figure that stays comparable when other tenants load the machine (wall time does not)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def log_files(logs: str) -> list[Path]:
    """The input files the ingest would read (same discovery, same ignore rules)."""
    from pipeline.ingest.reader import discover

    files, _ = discover([logs])
    return files


def _json_lines_files(logs: str) -> list[Path]:
    return [f for f in log_files(logs) if any(s in f.name for s in (".jsonl", ".ndjson"))]


# --- ingest and its floors ---------------------------------------------------------------------


def ingest_groups(logs: str, increment_bytes: int) -> list[list[Path]]:
    """Input files grouped into incremental ingest runs: one run per folder, and one per file in
    a folder larger than `increment_bytes` on disk (joined formats such as a batch input/output
    pair live in small folders of their own, so they stay in one run)."""
    by_folder: dict[Path, list[Path]] = {}
    for f in log_files(logs):
        by_folder.setdefault(f.parent, []).append(f)
    groups: list[list[Path]] = []
    for files in by_folder.values():
        if sum(f.stat().st_size for f in files) > increment_bytes:
            groups.extend([f] for f in files)
        else:
            groups.append(files)
    return groups


def step_split_logs(logs: str, out: str, max_lines: int) -> dict[str, Any]:
    """A copy of the input with every JSONL/CSV file cut into parts of at most `max_lines` records
    (same records, same order, gzip level 1 like the generator's large runs), for the incremental
    ingest fallback: one ingest run per part keeps each run's commit small."""
    import csv
    import sys

    csv.field_size_limit(sys.maxsize)
    src, dst = Path(logs), Path(out)
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    parts = 0
    for f in log_files(logs):
        rel = f.relative_to(src)
        (tmp / rel.parent).mkdir(parents=True, exist_ok=True)
        stem = rel.name.split(".")[0]
        opener = gzip.open if f.name.endswith(".gz") else open
        if ".jsonl" in f.name or ".ndjson" in f.name:
            with opener(f, "rb") as fh:
                part: list[bytes] = []
                for line in fh:
                    part.append(line)
                    if len(part) >= max_lines:
                        _write_part(tmp / rel.parent / f"{stem}.part{parts:04d}.jsonl.gz", part)
                        parts, part = parts + 1, []
                if part:
                    _write_part(tmp / rel.parent / f"{stem}.part{parts:04d}.jsonl.gz", part)
                    parts += 1
        elif f.name.endswith((".csv", ".csv.gz")):
            with opener(f, "rt", encoding="utf-8", newline="") as fh:
                reader = csv.reader(fh)
                header = next(reader)
                rows: list[list[str]] = []
                for row in reader:
                    rows.append(row)
                    if len(rows) >= max_lines:
                        _write_csv_part(tmp / rel.parent / f"{stem}.part{parts:04d}.csv", header, rows)
                        parts, rows = parts + 1, []
                if rows:
                    _write_csv_part(tmp / rel.parent / f"{stem}.part{parts:04d}.csv", header, rows)
                    parts += 1
        else:
            shutil.copyfile(f, tmp / rel)
            parts += 1
    shutil.rmtree(dst, ignore_errors=True)
    tmp.rename(dst)
    return {"records": None, "parts": parts, **self_usage()}


def _write_part(path: Path, lines: list[bytes]) -> None:
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.writelines(lines)


def _write_csv_part(path: Path, header: list[str], rows: list[list[str]]) -> None:
    import csv

    with open(path, "w", encoding="utf-8", newline="") as out:
        w = csv.writer(out)
        w.writerow(header)
        w.writerows(rows)


def step_ingest(logs: str, workdir: str, increment_bytes: int | None = None) -> dict[str, Any]:
    """The ingest of every input file into a fresh store: one run, or (with `increment_bytes`)
    the tool's incremental mode, one run per group of `ingest_groups`, each committing a version."""
    from bench.measure import PhaseSampler
    from pipeline.ingest import ingest

    shutil.rmtree(workdir, ignore_errors=True)
    groups = ingest_groups(logs, increment_bytes) if increment_bytes else [[Path(logs)]]
    totals: dict[str, int] = {}
    sampler = PhaseSampler()  # the tree's peak per step of the ingest (units, decide, commit)
    sampler.start()
    t0, c0 = time.perf_counter(), _cpu()
    try:
        for group in groups:
            result = ingest([str(f) for f in group], Path(workdir), progress=False)
            for k, v in result.totals.items():
                totals[k] = totals.get(k, 0) + v
    finally:
        sampler.stop()
    inner = time.perf_counter() - t0
    return {
        "records": totals["lines_read"],
        "bytes": sum(f.stat().st_size for f in log_files(logs)),
        "rows_written": totals["rows_written"],
        "rejected": totals["rejected"],
        "runs": len(groups),
        "inner_s": round(inner, 3), "inner_cpu_s": round(_cpu() - c0, 3),
        "peak_by_phase": dict(sorted(sampler.phases.items())),
        **self_usage(),
    }


def step_duckdb_read_json(logs: str) -> dict[str, Any]:
    """The floor: DuckDB's own `read_json` scan of the same JSONL files (plus `read_csv` of the CSV
    export), every column materialized into Arrow batches and dropped.

    Files are grouped by folder (one export format each) so the schema is inferred per format;
    DuckDB reads the files of a group in parallel on all cores.
    """
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    groups: dict[Path, list[str]] = {}
    for f in _json_lines_files(logs):
        groups.setdefault(f.parent, []).append(str(f))
    csvs = [str(f) for f in log_files(logs) if f.name.endswith((".csv", ".csv.gz"))]
    records = 0
    t0, c0 = time.perf_counter(), _cpu()
    for files in groups.values():
        reader = con.sql(
            "SELECT * FROM read_json($files, format = 'newline_delimited', union_by_name = true, "
            "ignore_errors = true, maximum_object_size = 268435456)",
            params={"files": files},
        ).to_arrow_reader(50_000)
        records += sum(b.num_rows for b in reader)
    for f in csvs:
        reader = con.sql("SELECT * FROM read_csv($file, header = true)", params={"file": f}).to_arrow_reader(50_000)
        records += sum(b.num_rows for b in reader)
    inner = time.perf_counter() - t0
    scanned = [*(f for fs in groups.values() for f in fs), *csvs]
    return {"records": records, "bytes": sum(Path(f).stat().st_size for f in scanned), "inner_s": round(inner, 3),
            "inner_cpu_s": round(_cpu() - c0, 3), **self_usage()}


def _line_chunks(path: Path, chunk_bytes: int) -> Any:
    """Whole lines of a (possibly gzipped) file in chunks of about `chunk_bytes` (bounded memory)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        rest = b""
        while True:
            block = fh.read(chunk_bytes)
            if not block:
                break
            block = rest + block
            cut = block.rfind(b"\n") + 1
            if cut == 0:
                rest = block
                continue
            rest = block[cut:]
            yield block[:cut]
        if rest.strip():
            yield rest


def step_polars_ndjson(logs: str, chunk_mb: int = 128) -> dict[str, Any]:
    """A peer: polars' NDJSON reader (full schema inference, every column) over the same JSONL files.

    polars reads one buffer at a time, so files are fed in chunks of whole lines (bounded memory);
    lines polars cannot parse (the planted bad lines) are dropped chunk by chunk, as DuckDB's
    `ignore_errors` does.
    """
    import polars as pl

    records = 0
    failed_chunks = 0
    t0, c0 = time.perf_counter(), _cpu()
    for f in _json_lines_files(logs):
        for chunk in _line_chunks(f, chunk_mb << 20):
            try:
                records += pl.read_ndjson(io.BytesIO(chunk), infer_schema_length=None).height
            except Exception:  # noqa: BLE001 - a peer's parse failure is a figure, not a crash
                failed_chunks += 1
    inner = time.perf_counter() - t0
    return {"records": records, "bytes": sum(f.stat().st_size for f in _json_lines_files(logs)),
            "failed_chunks": failed_chunks, "inner_s": round(inner, 3), "inner_cpu_s": round(_cpu() - c0, 3),
            **self_usage()}


# --- tokenization: memoized vs naive -----------------------------------------------------------


def step_tokenize(workdir: str, memoize: bool, limit: int | None = None) -> dict[str, Any]:
    from audit.token_accounting import tokenize_store
    from pipeline.tokens import get_encoding

    # Load both BPE tables first: a one-time cost of ~1 s per encoding that is not what the
    # comparison is about, and would otherwise land inside the first timed batch of either mode.
    for name in ("o200k_base", "cl100k_base"):
        get_encoding(name).encode_ordinary("warm up")
    c0 = _cpu()
    stats = tokenize_store(Path(workdir), memoize=memoize, limit=limit)
    # inner_s is tokenize_store's own timer (tokenization only); the CPU figure also covers reading
    # the store, the same in both modes.
    return {"records": stats.requests, "tokens": stats.tokens, "inner_s": round(stats.seconds, 3),
            "inner_cpu_s": round(_cpu() - c0, 3),
            "memo": stats.memo, **self_usage()}


# --- dedup: bulk MinHash vs datasketch's loop, recall vs exact Jaccard -------------------------


def step_dedup_texts(workdir: str, out: str, limit: int) -> dict[str, Any]:
    """Write the sample the dedup steps share: final-state dialog texts, oldest first (not timed)."""
    import pyarrow.parquet as pq

    from pipeline.sql import SqlDir
    from pipeline.workdir.store import connect_store

    con = connect_store(Path(workdir))
    try:
        table = SqlDir("bench").query(con, "dedup_texts", limit=limit).to_arrow_table()
    finally:
        con.close()
    pq.write_table(table, out)
    texts = table.column("text").to_pylist()
    return {"records": len(texts), "bytes": sum(len(t.encode("utf-8", "surrogatepass")) for t in texts),
            **self_usage()}


def _texts(path: str, limit: int | None) -> list[str]:
    import pyarrow.parquet as pq

    texts = pq.read_table(path, columns=["text"]).column("text").to_pylist()
    return texts[:limit] if limit else texts


def step_signatures(texts: str, method: str, limit: int | None = None) -> dict[str, Any]:
    """Raw text -> signature matrix, timed from the texts in memory.

    method: `bulk` (the tool: `shingle_hashes` + `signatures_from_hashes`), `datasketch_loop`
    (one `MinHash` per document, `update()` per shingle: the floor the issue names) or
    `datasketch_bulk` (`MinHash.bulk`). All three use xxh32 and affine32, so their signatures are
    bit-identical; the digest of the matrix lets the runner check that.
    """
    import hashlib

    from pipeline.dataset import dedup as dd

    cfg = dd.DedupConfig()
    docs = _texts(texts, limit)
    t0, c0 = time.perf_counter(), _cpu()
    if method == "bulk":
        sigs = dd.signatures_from_hashes([dd.shingle_hashes(t, cfg.ngram) for t in docs], cfg)
    elif method == "datasketch_loop":
        sigs = dd.signatures_update_loop(docs, cfg)
    elif method == "datasketch_bulk":
        sigs = dd.signatures_bulk(docs, cfg)
    else:
        raise ValueError(f"unknown signature method {method!r}")
    inner = time.perf_counter() - t0
    return {
        "records": len(docs),
        "bytes": sum(len(t.encode("utf-8", "surrogatepass")) for t in docs),
        "inner_s": round(inner, 3), "inner_cpu_s": round(_cpu() - c0, 3),
        "docs_per_s": round(len(docs) / inner, 1) if inner else None,
        "digest": hashlib.sha256(sigs.tobytes()).hexdigest()[:16],
        **self_usage(),
    }


def exact_pairs_sparse(hash_sets: list[Any], threshold: float, rows_per_block: int = 512) -> list[tuple[int, int, float]]:
    """Every pair (i < j) with exact Jaccard >= threshold, by sparse intersection counts.

    The ground truth for recall: exact over all pairs of the sample (no hashing into bands, no
    sampling), computed as blocks of A·Aᵀ on the document x shingle incidence matrix, so it stays
    far below the O(n²) Python loop of `dedup.exact_pairs` while giving the same pairs.
    """
    import numpy as np
    from scipy import sparse

    n = len(hash_sets)
    if n < 2:
        return []
    sizes = np.array([h.size for h in hash_sets], dtype=np.int64)
    flat = np.concatenate(hash_sets) if n else np.zeros(0, np.uint32)
    _, cols = np.unique(flat, return_inverse=True)
    indptr = np.concatenate([[0], np.cumsum(sizes)])
    a = sparse.csr_matrix((np.ones(flat.size, dtype=np.int32), cols, indptr), shape=(n, int(cols.max()) + 1 if flat.size else 0))
    at = a.T.tocsc()
    pairs: list[tuple[int, int, float]] = []
    for start in range(0, n, rows_per_block):
        inter = (a[start:start + rows_per_block] @ at).tocoo()
        i = inter.row + start
        j = inter.col
        keep = j > i
        i, j, c = i[keep], j[keep], inter.data[keep]
        jac = c / (sizes[i] + sizes[j] - c)
        hit = jac >= threshold
        pairs.extend(zip(i[hit].tolist(), j[hit].tolist(), jac[hit].tolist(), strict=True))
    return sorted(pairs)


def step_dedup_recall(texts: str, limit: int | None = None) -> dict[str, Any]:
    """The tool's near-duplicate search (shingle, bulk signatures, LSH, exact verification) on a
    sample, against exact Jaccard over all pairs of the same sample.

    Candidate recall = found / true for pairs at J >= 0.85 (the target) and J >= 0.8 (the tool's
    threshold). Verification is exact, so a true pair is in the output iff LSH made it a candidate.
    """
    from pipeline.dataset import dedup as dd

    cfg = dd.DedupConfig()
    docs = _texts(texts, limit)
    t0, c0 = time.perf_counter(), _cpu()
    hash_sets = [dd.shingle_hashes(t, cfg.ngram) for t in docs]
    sigs = dd.signatures_from_hashes(hash_sets, cfg)
    t_sig = time.perf_counter() - t0
    found = dd.near_duplicate_pairs(hash_sets, sigs, cfg)
    inner, inner_cpu = time.perf_counter() - t0, _cpu() - c0
    t1 = time.perf_counter()
    truth = exact_pairs_sparse(hash_sets, 0.8)
    exact_s = time.perf_counter() - t1
    found_set = {(i, j) for i, j, _ in found}
    truth_set = {(i, j) for i, j, _ in truth}

    def recall(min_j: float) -> dict[str, Any]:
        true = {(i, j) for i, j, jac in truth if jac >= min_j}
        hit = len(true & found_set)
        return {"true_pairs": len(true), "found": hit, "recall": round(hit / len(true), 4) if true else None}

    return {
        "records": len(docs),
        "inner_s": round(inner, 3), "inner_cpu_s": round(inner_cpu, 3),
        "signature_s": round(t_sig, 3),
        "lsh_verify_s": round(inner - t_sig, 3),
        "exact_truth_s": round(exact_s, 3),
        "pairs_found": len(found),
        "false_pairs": len(found_set - truth_set),
        "recall_j085": recall(0.85),
        "recall_j080": recall(0.8),
        "lsh": {"num_perm": cfg.num_perm, "bands": cfg.bands, "rows": cfg.rows, "ngram": cfg.ngram,
                "verify": f"exact Jaccard >= {cfg.threshold}"},
        **self_usage(),
    }


# --- audit pieces at 1x and 4x -----------------------------------------------------------------


def step_cache_sim(workdir: str, executor: str = "local", workers: int = 0) -> dict[str, Any]:
    """The cache simulation on one executor. With `ray`, a Ray instance is started on this machine
    inside the timed region (its start-up is part of the overhead a user pays); its workers are not
    this process's children, so the CPU figure covers only the driver there."""
    from audit.cache import simulate_cache
    from pipeline.executor import ExecutorConfig, make_executor

    work = Path(workdir) / ".bench_cache_work"
    t0, c0 = time.perf_counter(), _cpu()
    with make_executor(ExecutorConfig(executor=executor, workers=workers)) as pool:
        run = simulate_cache(Path(workdir), work_dir=work, executor=pool)
        execution = pool.stats()
    inner = time.perf_counter() - t0
    shutil.rmtree(work, ignore_errors=True)
    return {"records": run.requests, "simulated": run.simulated, "inner_s": round(inner, 3),
            "inner_cpu_s": round(_cpu() - c0, 3), "executor": executor, "execution": execution,
            "timings_s": run.timings_s, "memo": run.memo, **self_usage()}


def step_small_files(logs: str, out: str, records: int = 10_000) -> dict[str, Any]:
    """The first `records` JSONL records of the bench logs as `records` one-record files and as one
    file with the same records (the many-small-files ingest case)."""
    import gzip

    lines: list[bytes] = []
    for path in _json_lines_files(logs):
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rb") as fh:
            for line in fh:
                if line.strip():
                    lines.append(line if line.endswith(b"\n") else line + b"\n")
                    if len(lines) >= records:
                        break
        if len(lines) >= records:
            break
    root = Path(out)
    shutil.rmtree(root, ignore_errors=True)
    many, one = root / "many", root / "one"
    many.mkdir(parents=True)
    one.mkdir(parents=True)
    for i, line in enumerate(lines):
        (many / f"r{i:06d}.jsonl").write_bytes(line)
    (one / "all.jsonl").write_bytes(b"".join(lines))
    return {"records": len(lines), **self_usage()}


def step_task_types(workdir: str) -> dict[str, Any]:
    """Task clustering as the audit runs it: features, task-type assignment, then signals."""
    from audit.signals import SignalsConfig, detect_signals
    from audit.tables import open_store
    from audit.tasks import TasksConfig, assign_task_types, build_features

    con = open_store(Path(workdir))
    timings: dict[str, float] = {}
    try:
        t0, c0 = time.perf_counter(), _cpu()
        build_features(con, TasksConfig())
        timings["features"] = time.perf_counter() - t0
        t = time.perf_counter()
        assignment = assign_task_types(con, TasksConfig())
        timings["assign"] = time.perf_counter() - t
        t = time.perf_counter()
        signals = detect_signals(con, SignalsConfig())
        timings["signals"] = time.perf_counter() - t
        records = con.sql("SELECT count(*) FROM features").fetchall()[0][0]
    finally:
        con.close()
    inner = sum(timings.values())
    return {"records": int(records), "types": assignment.types, "requests_other": assignment.requests_other,
            "signal_rows": signals.num_rows, "inner_s": round(inner, 3), "inner_cpu_s": round(_cpu() - c0, 3),
            "timings_s": {k: round(v, 3) for k, v in timings.items()}, **self_usage()}


# --- the pipeline stages after ingest ----------------------------------------------------------


def step_audit(workdir: str) -> dict[str, Any]:
    from audit import audit
    from bench.measure import PhaseSampler

    sampler = PhaseSampler()
    sampler.start()
    try:
        result = audit(Path(workdir))
    finally:
        sampler.stop()
    n = _store_rows(workdir)
    return {"records": n, "timings_s": result.summary_json.get("timings_s", {}),
            "peak_by_phase": dict(sorted(sampler.phases.items())), **self_usage()}


def step_dataset(workdir: str) -> dict[str, Any]:
    from pipeline.dataset import build_dataset

    result = build_dataset(Path(workdir))
    m = result.manifest
    return {"records": m["counts"]["requests_in"], "examples": m["counts"]["examples_built"],
            "near_duplicates": m["counts"]["near_duplicates"], "dedup": m.get("dedup"),
            "timings_s": m.get("timings_s", {}), **self_usage()}


def step_report(workdir: str) -> dict[str, Any]:
    from pipeline.report import render_report

    render_report(Path(workdir))
    return {"records": _store_rows(workdir), **self_usage()}


def _store_rows(workdir: str) -> int:
    from pipeline.workdir.store import connect_store

    con = connect_store(Path(workdir))
    try:
        return int(con.sql("SELECT count(*) FROM requests").fetchall()[0][0])
    finally:
        con.close()
