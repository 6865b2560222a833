"""`make bench`: the pipeline stage by stage, each beside its floor or peer measured in the same run.

    python -m bench.run --requests 1000000            # the headline run
    python -m bench.run --requests 300 --quick        # seconds: the smoke test's scale

Generates logs with the project's generator (`sample_logs/generate.py`, cached under bench/work/
by requests+days+seed), then runs each step in its own child process (`bench.measure.run_child`)
and writes `bench/results/<date>-<scale>.json` plus a one-screen table on stdout:

  ingest            vs DuckDB's `read_json` scan of the same files (floor) and polars' NDJSON reader (peer)
  tokenization      memoized by content hash vs naive per-request tiktoken, same requests
  MinHash           bulk numpy signatures vs datasketch's per-document `update()` loop, same docs;
                    the near-duplicate search's candidate recall against exact Jaccard on a sample
  cache simulation  at 1x (requests/4) and 4x (requests): linear scaling check
  task clustering   the same
  end to end        ingest -> audit -> dataset -> report on the full input: wall and peak memory

Timings on a shared machine are noisy: every step records the load average and the CPU the rest
of the machine used while it ran (`foreign_cpu_s`).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.measure import ROOT, Measurement, StepFailed, run_child

GENERATOR = ROOT / "sample_logs" / "generate.py"

# Targets (issue 8, issue 2): what the summary checks each figure against.
TARGET_E2E_S = 600.0  # 1 M requests end to end
TARGET_E2E_RSS_MB = 2048.0
TARGET_E2E_AT = 1_000_000
TARGET_INGEST_VS_DUCKDB = 2.0
TARGET_INGEST_RSS_MB = 1536.0
TARGET_INGEST_INPUT_BYTES = 5 * 10**9
# Memoized tokenization against naive: a share of the input's ceiling (tokens counted / tokens the
# memo encoded), since text unique per request must be encoded either way (issue 15).
TARGET_TOKENIZE_SHARE_OF_CEILING = 0.8
TARGET_DEDUP_SPEEDUP = 5.0
TARGET_RECALL_J085 = 0.95
TARGET_SCALING_4X = 4.4
TARGET_RAY_OVERHEAD = 1.2  # the ray executor on this machine vs the local pool, same work
TARGET_SMALL_FILES = 3.0  # 10,000 one-record files vs one file with the same records
SMALL_FILES = 10_000
SCALING_STEPS = ("ingest_1x", "ingest_4x", "cache_sim_1x", "cache_sim_4x", "tasks_1x", "tasks_4x")
STEPS = ("ingest", "ingest_split", "ingest_incremental", "duckdb_read_json", "polars_ndjson", "tokenize_memo",
         "tokenize_naive", "dedup_texts", "minhash_bulk", "minhash_bulk_same", "minhash_loop", "minhash_ds_bulk",
         "dedup_recall", "audit", "dataset", "report", "cache_sim_local", "cache_sim_ray", "small_files_make",
         "ingest_small_files", "ingest_one_file", *SCALING_STEPS)
"""Every step key of `run` in order (`--only` picks among them)."""

# When a one-shot ingest fails, the input is cut into parts of INCREMENT_LINES records and folders
# larger than INCREMENT_BYTES on disk are ingested a part per run (62,500 requests committed in one
# run; 120,000 did not, in the first 1 M runs).
INCREMENT_LINES = 40_000
INCREMENT_BYTES = 256 << 20


@dataclass(frozen=True)
class Inputs:
    """One generated log folder and what is known about it."""

    logs: Path
    requests: int
    files: int
    disk_bytes: int
    json_bytes: int  # decompressed size: what the parsers actually read
    generate_s: float | None


def scale_label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def ensure_logs(work: Path, requests: int, days: int, seed: int) -> Inputs:
    """Generated logs for (requests, days, seed), reused when a complete copy exists."""
    out = work / f"logs-{scale_label(requests)}-d{days}-s{seed}"
    meta_path = out / ".bench_meta.json"
    if not meta_path.is_file():
        if not GENERATOR.is_file():
            raise SystemExit(f"bench: the generator {GENERATOR} is missing")
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
        print(f"bench: generating {requests:,} requests over {days} days (seed {seed}) -> {out}", file=sys.stderr)
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, str(GENERATOR), "--out", str(tmp), "--requests", str(requests), "--days", str(days),
             "--seed", str(seed), "--workers", str(os.cpu_count() or 1)],
            check=True,
        )
        generate_s = time.perf_counter() - t0
        tmp.rename(out)
        files = _input_files(out)
        meta = {
            "requests": requests, "days": days, "seed": seed, "files": len(files),
            "disk_bytes": sum(f.stat().st_size for f in files),
            "json_bytes": sum(_decompressed_size(f) for f in files),
            "generate_s": round(generate_s, 1),
        }
        meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    return Inputs(out, meta["requests"], meta["files"], meta["disk_bytes"], meta["json_bytes"], meta.get("generate_s"))


def _input_files(logs: Path) -> list[Path]:
    sys.path.insert(0, str(ROOT))
    from pipeline.ingest.reader import discover

    files, _ = discover([str(logs)])
    return files


def _decompressed_size(path: Path) -> int:
    if not path.name.endswith(".gz"):
        return path.stat().st_size
    n = 0
    with gzip.open(path, "rb") as fh:
        while block := fh.read(16 << 20):
            n += len(block)
    return n


def machine() -> dict[str, Any]:
    mem_kb = 0
    with open("/proc/meminfo", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    cpu_model = ""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            cpu_model = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "")
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gb": round(mem_kb / 1024**2, 1),
        "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("duckdb", "polars", "pyarrow", "tiktoken", "datasketch", "numpy"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


class Bench:
    """Runs steps, keeps their measurements in order, echoes progress to stderr and rewrites the
    results file after every step (a long run that dies late keeps what it measured)."""

    def __init__(self, log: Path, max_memory_mb: float | None, on_step: Any,
                 only: frozenset[str] | None = None) -> None:
        self.log = log
        self.max_memory_mb = max_memory_mb
        self.on_step = on_step
        self.only = only
        """`--only`: the step keys to run (None = all); the others are neither run nor recorded."""
        self.steps: dict[str, Measurement] = {}
        self.failures: dict[str, dict[str, Any]] = {}

    def step(self, key: str, name: str, target: str, *, part_of: str | None = None,
             **kwargs: Any) -> Measurement | None:
        """Run one step; a failure is recorded (and the run goes on) rather than losing the others.
        `part_of`: the selected step this one belongs to (an ingest's incremental fallback)."""
        if not self.wants(part_of or key):
            return None
        if key in self.steps or key in self.failures:  # carried over by --resume
            print(f"bench: {name}: kept from the earlier run (--resume)", file=sys.stderr, flush=True)
            return self.steps.get(key)
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        try:
            m = run_child(name, target, kwargs, log=self.log, max_memory_mb=self.max_memory_mb)
        except StepFailed as e:
            # Progress bars in the child's output would bury the error: keep the other lines.
            error = "\n".join(ln for ln in str(e).splitlines() if "\u2588" not in ln and "\u2595" not in ln)
            self.failures[key] = {"name": name, "error": error[-2000:], "wall_s": round(e.wall_s, 1),
                                  "peak_tree_mb": round(e.peak_tree_mb, 1)}
            print(f"bench:   FAILED after {e.wall_s:.0f} s: {error.strip().splitlines()[-1] if error.strip() else ''}"
                  f" (see {self.log})", file=sys.stderr, flush=True)
            self.on_step()
            return None
        self.steps[key] = m
        print(f"bench:   {m.wall_s:.1f} s wall, {m.cpu_s:.1f} s CPU, peak {m.peak_tree_mb:.0f} MB"
              f" (load {m.load_before:.1f}, foreign CPU {m.foreign_cpu_s:.0f} s)", file=sys.stderr, flush=True)
        self.on_step()
        return m

    def wants(self, *keys: str) -> bool:
        """Whether any of these steps is selected (`--only`)."""
        return self.only is None or any(k in self.only for k in keys)


def _inner(m: Measurement | None) -> float | None:
    return m.work_s if m is not None else None


def _inner_cpu(m: Measurement | None) -> float | None:
    """The work's CPU seconds: the ratio that survives other tenants loading the machine."""
    return (m.extra or {}).get("inner_cpu_s") if m is not None else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def _with_json_bytes(m: Measurement | None, inputs: Inputs) -> None:
    """Throughput of the ingest-like steps in decompressed JSON bytes (what is parsed); the on-disk
    size stays in `extra.disk_bytes`."""
    if m is None:
        return
    m.extra = {**(m.extra or {}), "disk_bytes": m.bytes}
    m.bytes = inputs.json_bytes


def results_path(args: argparse.Namespace) -> Path:
    return args.results / f"{dt.date.today():%Y-%m-%d}-{scale_label(args.requests)}.json"


def run(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    work: Path = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    log = work / f"bench-{started:%Y%m%dT%H%M%S}.log"
    at_start = machine()
    only = frozenset(args.only) if args.only else None
    wants = Bench(log, None, None, only).wants
    full = ensure_logs(work, args.requests, args.days, args.seed)
    scaling = None
    if not args.quick and wants(*SCALING_STEPS):
        four = args.scaling_requests or args.requests
        scaling = (ensure_logs(work, max(1, four // 4), args.days, args.seed),
                   full if four == args.requests else ensure_logs(work, four, args.days, args.seed))
    store = work / f"store-{scale_label(full.requests)}"
    results: dict[str, Any] = {
        "benchmark": "llm-log-audit make bench",
        "started_utc": started.isoformat(timespec="seconds"),
        "finished_utc": None,
        "git_commit": _git_commit(),
        "machine": at_start,
        "versions": _versions(),
        "command": " ".join(["python -m bench.run", *argv]),
        "inputs": {
            "full": _inputs_dict(full),
            "scaling_1x": _inputs_dict(scaling[0]) if scaling else None,
            "scaling_4x": _inputs_dict(scaling[1]) if scaling else None,
        },
        "memory_guard_mb": args.max_memory_mb,
    }

    def save() -> None:
        results["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        results["steps"] = {k: m.as_dict() for k, m in b.steps.items()}
        results["failures"] = b.failures
        results["summary"] = summarize(b.steps, b.failures, full, quick=args.quick)
        results["finished_utc"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        args.results.mkdir(parents=True, exist_ok=True)
        results_path(args).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")

    b = Bench(log, args.max_memory_mb, save, only)
    if only is not None:
        results["only"] = sorted(only)
    if args.resume and results_path(args).is_file():
        earlier = json.loads(results_path(args).read_text(encoding="utf-8"))
        b.steps.update({k: Measurement.from_dict(d) for k, d in earlier.get("steps", {}).items()})
        b.failures.update({k: f for k, f in earlier.get("failures", {}).items() if k in args.skip})
        results["started_utc"] = earlier.get("started_utc", results["started_utc"])
        results["machine"] = earlier.get("machine", results["machine"])
        results["resumed"] = {"at_utc": started.isoformat(timespec="seconds"), "machine": at_start,
                              "kept_steps": sorted(b.steps), "kept_failures": sorted(b.failures)}

    def ingest_step(key: str, label: str, inputs: Inputs, workdir: Path) -> Measurement | None:
        """One-shot ingest; if it fails, the incremental mode (one run per file of a large folder)
        builds the store so the later steps still run, and both are reported."""
        if not b.wants(key):
            return None  # not selected (--only): the store from an earlier run stays as it is
        m = b.step(key, label, "bench.steps:step_ingest", logs=str(inputs.logs), workdir=str(workdir))
        _with_json_bytes(m, inputs)
        if m is None and key in b.failures:
            split = inputs.logs.with_name(f"{inputs.logs.name}-split{scale_label(INCREMENT_LINES)}")
            b.step(f"{key}_split", f"split input into {INCREMENT_LINES:,}-record parts", "bench.steps:step_split_logs",
                   part_of=key, logs=str(inputs.logs), out=str(split), max_lines=INCREMENT_LINES)
            m = b.step(f"{key}_incremental", f"{label}, incremental ({INCREMENT_LINES // 1000}k-record runs)",
                       "bench.steps:step_ingest", part_of=key, logs=str(split), workdir=str(workdir),
                       increment_bytes=INCREMENT_BYTES)
            _with_json_bytes(m, inputs)
        if m is None:
            # Without a complete store the later steps would measure a partial one: remove it.
            shutil.rmtree(workdir, ignore_errors=True)
        return m

    # --- ingest and its floor / peer on the same files -------------------------------------------
    ingest_step("ingest", "ingest", full, store)
    _with_json_bytes(b.step("duckdb_read_json", "floor: DuckDB read_json scan", "bench.steps:step_duckdb_read_json",
                            logs=str(full.logs)), full)
    if not args.quick:
        _with_json_bytes(b.step("polars_ndjson", "peer: polars read_ndjson", "bench.steps:step_polars_ndjson",
                                logs=str(full.logs)), full)

    # --- tokenization: memoized vs naive on the same requests ------------------------------------
    tok_limit = min(args.tokenize_limit, full.requests)
    b.step("tokenize_memo", f"tokenize memoized ({tok_limit:,} req)", "bench.steps:step_tokenize",
           workdir=str(store), memoize=True, limit=tok_limit)
    b.step("tokenize_naive", f"floor: tokenize naive ({tok_limit:,} req)", "bench.steps:step_tokenize",
           workdir=str(store), memoize=False, limit=tok_limit)

    # --- MinHash: bulk vs datasketch loop (same docs), recall vs exact Jaccard --------------------
    texts = work / f"dedup-texts-{scale_label(full.requests)}.parquet"
    b.step("dedup_texts", "dedup sample (final-state dialog texts)", "bench.steps:step_dedup_texts",
           workdir=str(store), out=str(texts), limit=args.dedup_sample)
    b.step("minhash_bulk", "MinHash bulk (tool), all sample docs", "bench.steps:step_signatures",
           texts=str(texts), method="bulk")
    b.step("minhash_bulk_same", f"MinHash bulk (tool), {args.loop_sample:,} docs", "bench.steps:step_signatures",
           texts=str(texts), method="bulk", limit=args.loop_sample)
    b.step("minhash_loop", f"floor: datasketch update() loop, {args.loop_sample:,} docs",
           "bench.steps:step_signatures", texts=str(texts), method="datasketch_loop", limit=args.loop_sample)
    if not args.quick:
        b.step("minhash_ds_bulk", f"peer: datasketch MinHash.bulk, {args.loop_sample:,} docs",
               "bench.steps:step_signatures", texts=str(texts), method="datasketch_bulk", limit=args.loop_sample)
    b.step("dedup_recall", f"near-dup search vs exact Jaccard ({args.recall_sample:,} docs)",
           "bench.steps:step_dedup_recall", texts=str(texts), limit=args.recall_sample)

    # --- the rest of the pipeline on the full store (end to end = ingest + these) ----------------
    b.step("audit", "audit (cost, tasks, cache, traffic)", "bench.steps:step_audit", workdir=str(store))
    b.step("dataset", "dataset", "bench.steps:step_dataset", workdir=str(store))
    b.step("report", "report", "bench.steps:step_report", workdir=str(store))

    # --- executors: the cache simulation on the local pool and on Ray (same machine) ----------------
    b.step("cache_sim_local", f"cache simulation, local pool ({full.requests:,})", "bench.steps:step_cache_sim",
           workdir=str(store), executor="local")
    if not args.quick:  # tests/test_executors.py runs Ray; the smoke test stays quick
        b.step("cache_sim_ray", f"cache simulation, ray ({full.requests:,})", "bench.steps:step_cache_sim",
               workdir=str(store), executor="ray")

    # --- many small files vs one file with the same records ---------------------------------------
    small = work / f"small-files-{scale_label(SMALL_FILES)}"
    if b.wants("ingest_small_files", "ingest_one_file") and b.step("small_files_make", f"write {SMALL_FILES:,} one-record files", "bench.steps:step_small_files",
              logs=str(full.logs), out=str(small), records=SMALL_FILES) is not None:
        for key, sub in (("ingest_small_files", "many"), ("ingest_one_file", "one")):
            b.step(key, f"ingest {SMALL_FILES:,} records, {'one file each' if sub == 'many' else 'one file'}",
                   "bench.steps:step_ingest", logs=str(small / sub), workdir=str(work / f"store-{key}"))

    # --- linear scaling: cache simulation and task clustering at 1x and 4x -----------------------
    if scaling:
        one, four = scaling
        store_1x = work / f"store-{scale_label(one.requests)}"
        store_4x = work / f"store-{scale_label(four.requests)}"
        ingest_step("ingest_1x", f"ingest 1x ({one.requests:,})", one, store_1x)
        if four is not full:
            ingest_step("ingest_4x", f"ingest 4x ({four.requests:,})", four, store_4x)
        for kind, target, label in (("cache_sim", "bench.steps:step_cache_sim", "cache simulation"),
                                    ("tasks", "bench.steps:step_task_types", "task clustering")):
            b.step(f"{kind}_1x", f"{label} 1x ({one.requests:,})", target, workdir=str(store_1x))
            b.step(f"{kind}_4x", f"{label} 4x ({four.requests:,})", target, workdir=str(store_4x))
    else:
        b.step("cache_sim_4x", f"cache simulation ({full.requests:,})", "bench.steps:step_cache_sim",
               workdir=str(store))
        b.step("tasks_4x", f"task clustering ({full.requests:,})", "bench.steps:step_task_types", workdir=str(store))
    save()
    return results


def _inputs_dict(i: Inputs) -> dict[str, Any]:
    return {"logs": str(i.logs.relative_to(ROOT)) if i.logs.is_relative_to(ROOT) else str(i.logs),
            "requests": i.requests, "files": i.files, "disk_bytes": i.disk_bytes, "json_bytes": i.json_bytes,
            "generate_s": i.generate_s}


def _check(value: float | None, limit: float, *, at_most: bool = True, applies: bool = True) -> dict[str, Any]:
    if value is None:
        return {"value": None, "target": limit, "met": None}
    met = value <= limit if at_most else value >= limit
    return {"value": value, "target": f"{'<=' if at_most else '>='} {limit}", "met": met if applies else None,
            **({} if applies else {"note": "target is stated for the 1 M run"})}


def tokenize_speedup(speedup: float | None, ceiling: float | None, *, same_token_total: bool) -> dict[str, Any]:
    """The memo's speed-up over naive tokenization, checked as its share of the input's ceiling."""
    share = round(speedup / ceiling, 3) if speedup is not None and ceiling else None
    return {**_check(share, TARGET_TOKENIZE_SHARE_OF_CEILING, at_most=False), "speedup": speedup, "ceiling": ceiling,
            "same_token_total": same_token_total}


def summarize(s: dict[str, Measurement], failures: dict[str, dict[str, Any]], full: Inputs, *,
              quick: bool) -> dict[str, Any]:
    """The comparisons and each target met / missed (None where a step is missing or out of scope)."""

    def extra(key: str) -> dict[str, Any]:
        return (s[key].extra or {}) if key in s else {}

    out: dict[str, Any] = {}
    at_scale = full.requests >= TARGET_E2E_AT
    # A failed one-shot ingest counts as failed; the incremental ingest that built the store
    # instead stands in for it, so the later stages still have end-to-end figures.
    ingest_key = "ingest_incremental" if "ingest" not in s and "ingest_incremental" in s else "ingest"
    e2e_keys = (ingest_key, "audit", "dataset", "report")
    if all(k in s or k in failures for k in e2e_keys):
        # A failed stage counts with the time and memory it had used when it failed: the figures
        # are then lower bounds, and the run did not finish, so the target is missed.
        failed = [k for k in ("ingest", *e2e_keys[1:]) if k in failures]
        e2e_wall = round(sum(s[k].wall_s if k in s else failures[k]["wall_s"] for k in e2e_keys), 1)
        e2e_peak = max(s[k].peak_tree_mb or s[k].peak_rss_mb if k in s else failures[k]["peak_tree_mb"]
                       for k in e2e_keys)
        out["end_to_end"] = {
            "wall_s": e2e_wall, "cpu_s": round(sum(s[k].cpu_s for k in e2e_keys if k in s), 1), "peak_mb": e2e_peak,
            "failed_stages": failed, "stages": list(e2e_keys),
            "wall_target": _check(e2e_wall, TARGET_E2E_S, applies=at_scale),
            "peak_target": _check(e2e_peak, TARGET_E2E_RSS_MB, applies=at_scale),
        }
        if failed:
            for t in ("wall_target", "peak_target"):
                if out["end_to_end"][t]["met"] is not None:
                    out["end_to_end"][t]["met"] = False
    if ingest_key in s:
        ingest = s[ingest_key]
        if "duckdb_read_json" in s:
            out["ingest_vs_duckdb"] = {
                **_check(_ratio(_inner(ingest), _inner(s["duckdb_read_json"])), TARGET_INGEST_VS_DUCKDB),
                "cpu_ratio": _ratio(_inner_cpu(ingest), _inner_cpu(s["duckdb_read_json"])),
            }
        if "polars_ndjson" in s:
            out["ingest_vs_polars"] = _ratio(_inner(ingest), _inner(s["polars_ndjson"]))
        out["ingest_memory"] = {
            **_check(ingest.peak_tree_mb, TARGET_INGEST_RSS_MB, applies=full.json_bytes >= TARGET_INGEST_INPUT_BYTES),
            "input_json_bytes": full.json_bytes, "input_disk_bytes": full.disk_bytes, "measured_on": ingest_key,
        }
        if "ingest" in failures:
            out["ingest_memory"]["one_shot_failed"] = {k: failures["ingest"][k] for k in ("wall_s", "peak_tree_mb")}
    if "tokenize_memo" in s and "tokenize_naive" in s:
        out["tokenize_speedup"] = tokenize_speedup(
            _ratio(_inner(s["tokenize_naive"]), _inner(s["tokenize_memo"])),
            # Tokens counted / tokens actually encoded by the memo: the speed-up's ceiling on this
            # input (the rest of the text is unique per request and must be encoded either way).
            _ratio(extra("tokenize_memo").get("tokens"), (extra("tokenize_memo").get("memo") or {}).get("tokens_encoded")),
            same_token_total=extra("tokenize_memo").get("tokens") == extra("tokenize_naive").get("tokens"),
        )
    if "minhash_loop" in s and "minhash_bulk_same" in s:
        out["minhash_speedup"] = {
            **_check(_ratio(_inner(s["minhash_loop"]), _inner(s["minhash_bulk_same"])), TARGET_DEDUP_SPEEDUP,
                     at_most=False),
            "cpu_ratio": _ratio(_inner_cpu(s["minhash_loop"]), _inner_cpu(s["minhash_bulk_same"])),
            "bit_identical": extra("minhash_loop").get("digest") == extra("minhash_bulk_same").get("digest"),
            "tool_docs_per_s": extra("minhash_bulk").get("docs_per_s"),
            "datasketch_loop_docs_per_s": extra("minhash_loop").get("docs_per_s"),
        }
        if "minhash_ds_bulk" in s:
            out["minhash_speedup"]["vs_datasketch_bulk"] = _ratio(_inner(s["minhash_ds_bulk"]),
                                                                  _inner(s["minhash_bulk_same"]))
    if "dedup_recall" in s:
        r085 = extra("dedup_recall").get("recall_j085") or {}
        out["dedup_recall_j085"] = {
            # No true pair in the sample means nothing was measured: not a pass.
            **_check(r085.get("recall"), TARGET_RECALL_J085, at_most=False),
            "true_pairs": r085.get("true_pairs"),
            "false_pairs": extra("dedup_recall").get("false_pairs"),
        }
    for name in ("cache_sim", "tasks"):
        one, four = s.get(f"{name}_1x"), s.get(f"{name}_4x")
        if one and four:
            out[f"{name}_scaling_4x"] = {**_check(_ratio(_inner(four), _inner(one)), TARGET_SCALING_4X),
                                         "cpu_ratio": _ratio(_inner_cpu(four), _inner_cpu(one)),
                                         "requests_ratio": _ratio(four.records, one.records)}
    if "cache_sim_local" in s and "cache_sim_ray" in s:
        out["ray_overhead"] = _check(_ratio(_inner(s["cache_sim_ray"]), _inner(s["cache_sim_local"])),
                                     TARGET_RAY_OVERHEAD)
    if "ingest_small_files" in s and "ingest_one_file" in s:
        out["small_files"] = {**_check(_ratio(_inner(s["ingest_small_files"]), _inner(s["ingest_one_file"])),
                                       TARGET_SMALL_FILES),
                              "cpu_ratio": _ratio(_inner_cpu(s["ingest_small_files"]), _inner_cpu(s["ingest_one_file"]))}
    if quick:
        out["note"] = "quick mode: polars peer, datasketch bulk peer, the ray row and the 1x/4x scaling runs skipped"
    return out


# --- the one-screen table ----------------------------------------------------------------------


def _fmt(x: float | None, nd: int = 1) -> str:
    if x is None:
        return "-"
    if x >= 10_000:
        return f"{x:,.0f}"
    return f"{x:,.{nd}f}"


def _verdict(c: dict[str, Any]) -> str:
    met = c.get("met")
    return "" if met is None else ("ok" if met else "MISSED")


def _cmp(c: dict[str, Any] | None, fmt: str) -> str:
    if not c or c.get("value") is None:
        return ""
    cpu = f", CPU {c['cpu_ratio']}x" if c.get("cpu_ratio") else ""
    return (fmt.format(v=c["value"]) + f"{cpu} (target {c['target']}) {_verdict(c)}").rstrip()


def table(results: dict[str, Any]) -> str:
    s = results["steps"]
    sm = results["summary"]
    full = results["inputs"]["full"]
    tok = sm.get("tokenize_speedup") or {}
    mh = sm.get("minhash_speedup") or {}
    rows: list[tuple[str, str]] = [
        ("ingest", _cmp(sm.get("ingest_vs_duckdb"), "{v}x DuckDB scan time")),
        ("ingest_incremental", _cmp(sm.get("ingest_vs_duckdb"), "{v}x DuckDB scan time")),
        ("duckdb_read_json", "floor"),
        ("polars_ndjson", f"peer; ingest = {sm.get('ingest_vs_polars')}x its time"),
        ("audit", ""),
        ("dataset", ""),
        ("report", ""),
        ("tokenize_memo", _cmp(tok, f"{tok.get('speedup')}x faster than naive, {{v}} of the {tok.get('ceiling')}x ceiling")),
        ("tokenize_naive", "floor" + ("" if tok.get("same_token_total", True) else " (TOKEN TOTALS DIFFER)")),
        ("minhash_bulk", ""),
        ("minhash_bulk_same", _cmp(mh, "{v}x datasketch loop")
         + ("" if mh.get("bit_identical", True) else " (SIGNATURES DIFFER)")),
        ("minhash_loop", "floor (same docs)"),
        ("minhash_ds_bulk", f"peer; tool = {mh.get('vs_datasketch_bulk')}x faster"),
        ("dedup_recall", _cmp(sm.get("dedup_recall_j085"), "recall@J>=0.85 {v}")),
        ("cache_sim_1x", ""),
        ("cache_sim_4x", _cmp(sm.get("cache_sim_scaling_4x"), "4x requests: {v}x time")),
        ("tasks_1x", ""),
        ("tasks_4x", _cmp(sm.get("tasks_scaling_4x"), "4x requests: {v}x time")),
        ("cache_sim_local", ""),
        ("cache_sim_ray", _cmp(sm.get("ray_overhead"), "{v}x the local pool's time")),
        ("ingest_one_file", ""),
        ("ingest_small_files", _cmp(sm.get("small_files"), "{v}x one file's time")),
        ("ingest_1x", "(store of the 1x runs)"),
        ("ingest_1x_incremental", "(store of the 1x runs)"),
        ("ingest_4x", "(store of the 4x runs)"),
        ("ingest_4x_incremental", "(store of the 4x runs)"),
    ]
    m = results["machine"]
    head = (f"{'step':<42}{'wall s':>8}{'work s':>8}{'CPU s':>8}{'peak MB':>8}{'rec/s':>9}{'MB/s':>7}"
            "  vs floor / peer / target")
    lines = [
        f"make bench: {full['requests']:,} requests, {full['files']} files, {full['disk_bytes'] / 1e9:.2f} GB on disk"
        f" ({full['json_bytes'] / 1e9:.2f} GB JSON); {m['nproc']} CPUs, {m['memory_gb']} GB;"
        f" load {m['loadavg_1_5_15'][0]} -> {m['loadavg_at_end'][0]}",
        head,
        "-" * len(head),
    ]
    for key, text in rows:
        if key not in s:
            f = results.get("failures", {}).get(key)
            if f:
                lines.append(f"{f['name'][:41]:<42}{_fmt(f['wall_s']):>8}{'FAILED':>8}{'':>8}"
                             f"{_fmt(f['peak_tree_mb'], 0):>8}{'':>16}  {f['error'].strip().splitlines()[-1][:60]}")
            continue
        r = s[key]
        lines.append(f"{r['name'][:41]:<42}{_fmt(r['wall_s']):>8}{_fmt(r['work_s']):>8}{_fmt(r['cpu_s']):>8}"
                     f"{_fmt(r['peak_tree_mb'], 0):>8}{_fmt(r['records_per_s'], 0):>9}{_fmt(r['mb_per_s']):>7}  {text}")
    lines.append("-" * len(head))
    e = sm.get("end_to_end")
    if e:
        failed = f" (FAILED: {', '.join(e['failed_stages'])}; figures are lower bounds)" if e["failed_stages"] else ""
        lines.append(f"{'end to end: ingest+audit+dataset+report':<42}{_fmt(e['wall_s']):>8}{'':>8}"
                     f"{_fmt(e['cpu_s']):>8}{_fmt(e['peak_mb'], 0):>8}{'':>16}  "
                     f"{_cmp(e['wall_target'], '{v} s')}; peak {_cmp(e['peak_target'], '{v} MB')}{failed}")
    im = sm.get("ingest_memory")
    if im:
        lines.append(f"ingest peak memory {im['value']} MB on {im['input_json_bytes'] / 1e9:.2f} GB of JSON"
                     f" (target <= {TARGET_INGEST_RSS_MB:.0f} MB on >= 5 GB) {_verdict(im)}".rstrip())
    lines.extend(_phase_lines(s.get("audit")))
    lines.append("work s: the step's own timer (no start-up), rec/s and MB/s from it; MB/s of decompressed JSON"
                 " (ingest, floors) or dialog text (MinHash); peak MB: summed PSS of the step's processes")
    return "\n".join(lines)


def _phase_lines(step: dict[str, Any] | None) -> list[str]:
    """The audit's peak process tree per step (bench.measure.PhaseSampler), largest first."""
    phases = ((step or {}).get("extra") or {}).get("peak_by_phase") or {}
    if not phases:
        return []
    lines = [f"audit peak tree by step (target <= {TARGET_E2E_RSS_MB:.0f} MB): MB total (driver's own)"]
    for name, p in sorted(phases.items(), key=lambda kv: -kv[1]["peak_tree_mb"]):
        lines.append(f"  {name:<40}{_fmt(p['peak_tree_mb'], 0):>8} ({_fmt(p['driver_mb'], 0)})")
    return lines


def resummarize(path: Path) -> int:
    results = json.loads(path.read_text(encoding="utf-8"))
    full = results["inputs"]["full"]
    inputs = Inputs(Path(full["logs"]), full["requests"], full["files"], full["disk_bytes"], full["json_bytes"],
                    full.get("generate_s"))
    steps = {k: Measurement.from_dict(d) for k, d in results["steps"].items()}
    results["summary"] = summarize(steps, results.get("failures", {}), inputs, quick="note" in results.get("summary", {}))
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(table(results))
    return 0


def _step_list(value: str) -> set[str]:
    keys = {k.strip() for k in value.split(",") if k.strip()}
    unknown = sorted(keys - set(STEPS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown step(s) {', '.join(unknown)}; steps: {', '.join(STEPS)}")
    return keys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=200_000, help="API calls to generate (the end-to-end scale)")
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--work", type=Path, default=ROOT / "bench" / "work", help="generated logs, stores, logs")
    ap.add_argument("--results", type=Path, default=ROOT / "bench" / "results",
                    help="folder of the results file <date>-<scale>.json (default bench/results)")
    ap.add_argument("--tokenize-limit", type=int, default=100_000, help="requests tokenized by both paths")
    ap.add_argument("--dedup-sample", type=int, default=50_000, help="dialog texts in the dedup sample")
    ap.add_argument("--loop-sample", type=int, default=3_000, help="docs the datasketch loop signs")
    ap.add_argument("--recall-sample", type=int, default=20_000, help="docs checked against exact Jaccard")
    ap.add_argument("--scaling-requests", type=int, default=None,
                    help="the 4x scale of the scaling check (default --requests; 1x is a quarter of it)")
    ap.add_argument("--max-memory-mb", type=float, default=10_000,
                    help="memory guard: a step whose processes hold more is killed and reported as failed")
    ap.add_argument("--resume", action="store_true",
                    help="keep the steps today's results file for this scale already measured; run the rest")
    ap.add_argument("--skip", type=lambda v: set(v.split(",")), default=set(),
                    help="with --resume: comma-separated failed steps to keep as failed instead of re-running")
    ap.add_argument("--quick", action="store_true",
                    help="skip the polars and datasketch-bulk peers and the 1x/4x scaling inputs (smoke test)")
    ap.add_argument("--only", type=_step_list, default=None, metavar="STEP,STEP",
                    help="run only these steps (keys of the results file), e.g. "
                         "ingest,duckdb_read_json,audit,dataset,report,tokenize_memo,tokenize_naive; "
                         "steps on the store need `ingest` in the list or a store from an earlier run")
    ap.add_argument("--summarize-only", type=Path, default=None, metavar="RESULTS_JSON",
                    help="recompute the summary of an existing results file, rewrite it and print the table")
    args = ap.parse_args(argv)
    if args.summarize_only:
        return resummarize(args.summarize_only)
    results = run(args, list(sys.argv[1:] if argv is None else argv))
    print(table(results))
    print(f"\nwrote {results_path(args)}")
    if results["failures"]:
        print(f"bench: {len(results['failures'])} step(s) failed: {', '.join(results['failures'])}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
