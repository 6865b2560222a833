"""Stage 3: build a fine-tuning dataset from the store: filter, redact, deduplicate, split, write.

    requests --filters--> survivors --session collapse--> examples --redact--> --exact/near dedup-->
        --group-aware split--> WORKDIR/dataset/{train,eval}.jsonl, lineage.parquet, manifest.json, dataset_card.md

`build_dataset(workdir, config)` is the API; `logaudit dataset WORKDIR` calls it. It reads the
store and, when present, `WORKDIR/audit/request_labels.parquet` (task types and the
regenerated/edited/feedback signals). Without labels it still runs: every example is task type
`unlabeled` and the label filters are skipped, which the manifest records under `labels`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from pipeline.config import from_section
from pipeline.dataset import dedup as dd
from pipeline.dataset.examples import Example, count_tokens, dialog_text, messages_of, prefix_keys, tools_of
from pipeline.dataset.filters import (
    BAD_ANSWER_REASONS,
    DEDUP_REASONS,
    FILTERS,
    LABEL_FILTERS,
    Candidate,
    FilterContext,
    first_reason,
    is_json,
    requests_json,
)
from pipeline.dataset.formats import FORMATS, dumps, record_dialog_text
from pipeline.dataset.redact import CachedRedactor
from pipeline.dataset.split import assign_split, split_groups
from pipeline.errors import DatasetError
from pipeline.ingest.store import connect_store, current_version, requests_glob
from pipeline.tokens import TokenCounter, encoding_name_for
from schemas.dataset import LINEAGE_SCHEMA

UNLABELED = "unlabeled"
PII_MODES = ("redact", "drop", "keep")
SQL_DIR = Path(__file__).parent
LABEL_COLUMNS = ("request_id", "task_type", "regenerated", "edited", "feedback_rating", "clean_example", "is_retry")


@dataclass(frozen=True)
class DatasetConfig:
    format: str = "openai"  # openai | anthropic | trl | sharegpt (see formats.py)
    pii: str = "redact"  # redact (typed placeholders) | drop (the request) | keep (count only)
    per_task: bool = False  # one train/eval pair per task type under dataset/tasks/<task>/
    filters: tuple[str, ...] = tuple(f for f in FILTERS if f != "pii")  # ordered; remove a name to disable it
    seed: int = 13  # seeds the eval split order
    eval_fraction: float = 0.10  # share of each task type's examples held out
    eval_cap_per_task: int = 300  # at most this many eval examples per task type (guides: 200-500)
    split_group_threshold: float = 0.6  # Jaccard joining examples into one split group; > 1 disables
    target_model: str = "gpt-4.1-mini"  # picks the tokenizer that counts example tokens
    max_example_tokens: int = 65_536  # per-example limit of the target (OpenAI: 65,536 for 4o/4.1-mini)
    price_per_million_training_tokens: float = 5.00  # USD; gpt-4.1-mini SFT list price
    epochs: int = 0  # 0 = OpenAI's default rule (3, adjusted so examples x epochs is in [100, 25000])
    refusal_prefix_chars: int = 300  # how far into an answer a refusal phrase may start
    json_task_min_share: float = 0.8  # a task type whose answers are JSON at least this often is a JSON task
    dropped_sample_size: int = 10  # dropped request ids listed per filter in the manifest
    dedup: dd.DedupConfig = field(default_factory=dd.DedupConfig)

    @classmethod
    def from_toml(cls, config: dict[str, Any], **overrides: Any) -> DatasetConfig:
        """`[dataset]` and `[dataset.dedup]` of a TOML config, then CLI overrides (None = not given)."""
        section = dict(config.get("dataset", {}) if isinstance(config.get("dataset"), dict) else {})
        section.pop("dedup", None)
        if "filters" in section:
            section["filters"] = tuple(section["filters"])
        base = from_section(cls, {"dataset": section}, "dataset")
        dedup_cfg = from_section(dd.DedupConfig, config, "dataset.dedup")
        return dataclasses.replace(base, dedup=dedup_cfg, **{k: v for k, v in overrides.items() if v is not None})


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
            f"${m['estimate']['training_cost_usd']:.2f} for {m['estimate']['epochs']} epochs",
            f"  secrets/PII {m['pii']['mode']}: {sum(m['pii']['found'].values())} found; "
            f"leakage pairs (eval~train, Jaccard >= {m['leakage']['threshold']}): {m['leakage']['pairs']}; "
            f"invalid records: {m['validation']['invalid_records']}",
        ]
        if not m["labels"]["present"]:
            lines.append("  note: no audit/request_labels.parquet; regenerated/edited filters skipped (run `logaudit audit`)")
        return "\n".join(lines)


def build_dataset(workdir: Path, config: DatasetConfig | None = None) -> DatasetResult:
    """Filter, redact, deduplicate and split the store into `WORKDIR/dataset/`."""
    cfg = config or DatasetConfig()
    _check_config(cfg)
    workdir = Path(workdir)
    timings: dict[str, float] = {}
    t = time.perf_counter()

    rows = _load_requests(workdir)
    labels, labels_info = _load_labels(workdir)
    fmt = FORMATS[cfg.format]
    counter = TokenCounter(encoding_name_for(cfg.target_model))
    cands = [_candidate(row, labels.get(row["request_id"], {})) for row in rows]
    del rows
    timings["load"] = time.perf_counter() - t

    # --- per-request filters -------------------------------------------------------------------
    t = time.perf_counter()
    active = tuple(f for f in cfg.filters if labels_info["present"] or f not in LABEL_FILTERS)
    if cfg.pii == "drop" and "pii" not in active:
        active = (*active, "pii")
    ctx = FilterContext(
        max_example_tokens=cfg.max_example_tokens,
        supports_tools=fmt.supports_tools,
        pii_drop=cfg.pii == "drop",
        refusal_prefix_chars=cfg.refusal_prefix_chars,
        json_task_types=_json_task_types(cands, cfg.json_task_min_share),
        counter=counter,
    )
    reasons: dict[str, str] = {}
    for c in cands:
        reason = first_reason(c, active, ctx)
        if reason:
            reasons[c.request_id] = reason
    timings["filters"] = time.perf_counter() - t

    # --- one example per final conversation state ----------------------------------------------
    t = time.perf_counter()
    examples = _collapse_sessions(cands, reasons)
    for c in cands:
        c.release()  # examples keep what they need; at scale the rows are most of the memory
    for ex in examples:
        if not ex.tokens:
            ex.tokens, ex.assistant_tokens = count_tokens(ex.system, ex.messages, ex.tools, counter)
    pii_found = _apply_pii(examples, cfg.pii)
    timings["examples"] = time.perf_counter() - t

    # --- dedup -----------------------------------------------------------------------------------
    t = time.perf_counter()
    texts = [dialog_text(ex.messages) for ex in examples]
    hash_sets = [dd.shingle_hashes(x, cfg.dedup.ngram) for x in texts]
    sigs = dd.signatures_from_hashes(hash_sets, cfg.dedup) if examples else np.zeros((0, cfg.dedup.num_perm), np.uint32)
    sig_seconds = time.perf_counter() - t  # shingling + hashing + signatures, the part bench compares
    dup_of, near_pairs = _deduplicate(examples, texts, hash_sets, sigs, cfg.dedup)
    timings["dedup"] = time.perf_counter() - t

    # --- split -------------------------------------------------------------------------------------
    t = time.perf_counter()
    kept_idx = [i for i in range(len(examples)) if i not in dup_of]
    kept = [examples[i] for i in kept_idx]
    roots, split_stats = split_groups(
        [ex.session_id for ex in kept],
        [_last_user_text(ex) for ex in kept],
        [hash_sets[i] for i in kept_idx],
        sigs[kept_idx] if kept_idx else sigs,
        cfg.dedup,
        cfg.split_group_threshold,
    )
    splits = assign_split(
        roots, [ex.task_type for ex in kept], [ex.final_request_id for ex in kept],
        cfg.seed, cfg.eval_fraction, cfg.eval_cap_per_task,
    )
    for ex, s in zip(kept, splits, strict=True):
        ex.split = s
    timings["split"] = time.perf_counter() - t

    # --- write, then verify what was written ---------------------------------------------------
    t = time.perf_counter()
    out_dir = workdir / "dataset"
    tmp_dir = workdir / f".dataset.tmp-{os.getpid()}"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir(parents=True)
    files = _write_jsonl(tmp_dir, kept, fmt.render, cfg.per_task)
    validation = _validate_written(tmp_dir, files, fmt.validate, cfg.max_example_tokens, kept)
    leakage = _leakage_check(tmp_dir, files, cfg.dedup)
    timings["write_verify"] = time.perf_counter() - t

    request_status = _request_outcomes(cands, reasons, examples, dup_of)
    _write_lineage(tmp_dir / "lineage.parquet", examples, dup_of, near_pairs, cands, reasons, request_status, ctx)
    manifest = _manifest(
        workdir, cfg, cands, reasons, request_status, active, labels_info, examples, dup_of, kept, files,
        pii_found, validation, leakage, split_stats, near_pairs, sig_seconds, timings, counter.encoding_name,
    )
    (tmp_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
    (tmp_dir / "dataset_card.md").write_text(_card(manifest), encoding="utf-8")
    _swap_in(tmp_dir, out_dir)
    return DatasetResult(out_dir, manifest)


# --- loading ---------------------------------------------------------------------------------------


def _check_config(cfg: DatasetConfig) -> None:
    if cfg.format not in FORMATS:
        raise DatasetError(f"Unknown dataset format `{cfg.format}`. Choose one of: {', '.join(FORMATS)}.")
    if cfg.pii not in PII_MODES:
        raise DatasetError(f"Unknown PII mode `{cfg.pii}`. Choose one of: {', '.join(PII_MODES)}.")
    unknown = [f for f in cfg.filters if f not in FILTERS]
    if unknown:
        raise DatasetError(f"Unknown filter(s) {', '.join(unknown)} in [dataset] filters. Known: {', '.join(FILTERS)}.")
    if not 0 <= cfg.eval_fraction < 1:
        raise DatasetError(f"`eval_fraction` must be in [0, 1), got {cfg.eval_fraction}.")
    if cfg.dedup.bands * cfg.dedup.rows > cfg.dedup.num_perm or cfg.dedup.check_bands * cfg.dedup.check_rows > cfg.dedup.num_perm:
        raise DatasetError("[dataset.dedup] bands x rows must not exceed num_perm.")


def _load_requests(workdir: Path) -> list[dict[str, Any]]:
    sql = (SQL_DIR / "load_requests.sql").read_text(encoding="utf-8")
    con = connect_store(workdir)
    try:
        table = con.sql(sql).to_arrow_table()
    finally:
        con.close()
    return table.to_pylist()


def _load_labels(workdir: Path) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    path = Path(workdir) / "audit" / "request_labels.parquet"
    if not path.is_file():
        return {}, {"present": False, "path": str(path), "columns": []}
    names = pq.read_schema(path).names
    if "request_id" not in names:
        raise DatasetError(f"`{path}` has no `request_id` column; re-run `logaudit audit`.")
    columns = [c for c in LABEL_COLUMNS if c in names]
    table = pq.read_table(path, columns=columns)
    labels = {r["request_id"]: r for r in table.to_pylist()}
    return labels, {"present": True, "path": str(path), "columns": columns, "sha256": _sha256(path)}


def _task_labels(workdir: Path) -> dict[str, str]:
    """Human-readable task-type labels from audit/task_types.parquet, when the audit wrote it."""
    path = Path(workdir) / "audit" / "task_types.parquet"
    if not path.is_file() or not {"task_type", "label"} <= set(pq.read_schema(path).names):
        return {}
    return {r["task_type"]: r["label"] or "" for r in pq.read_table(path, columns=["task_type", "label"]).to_pylist()}


def _candidate(row: dict[str, Any], label: dict[str, Any]) -> Candidate:
    return Candidate(
        row=row,
        label=label,
        messages=messages_of(row),
        tools=tools_of(row),
        task_type=str(label.get("task_type") or UNLABELED),
    )


def _json_task_types(cands: list[Candidate], min_share: float) -> frozenset[str]:
    """Task types whose successful answers are JSON at least `min_share` of the time."""
    seen: Counter[str] = Counter()
    as_json: Counter[str] = Counter()
    for c in cands:
        if c.task_type == UNLABELED or c.row.get("finish_reason") != "stop" or not c.response_text.strip():
            continue
        seen[c.task_type] += 1
        as_json[c.task_type] += is_json(c.response_text) or requests_json(c.row)
    return frozenset(t for t, n in seen.items() if n >= 5 and as_json[t] / n >= min_share)


# --- examples ------------------------------------------------------------------------------------


def _collapse_sessions(cands: list[Candidate], reasons: dict[str, str]) -> list[Example]:
    """One example per surviving request whose conversation no other survivor extends."""
    survivors = [c for c in cands if c.request_id not in reasons]
    by_full_key: dict[bytes, list[Candidate]] = defaultdict(list)
    keys: dict[str, list[bytes]] = {}
    for c in cands:
        keys[c.request_id] = prefix_keys(c.row.get("system_text"), c.messages)
        by_full_key[keys[c.request_id][-1]].append(c)
    extended: set[bytes] = set()
    for c in survivors:
        k = keys[c.request_id]
        extended.update(k[i] for i, m in enumerate(c.messages[:-1]) if m.role == "assistant")
    examples = []
    for c in survivors:
        k = keys[c.request_id]
        if k[-1] in extended:
            continue  # an earlier state of a conversation that continues in a later example
        sources: list[str] = []
        for i, m in enumerate(c.messages[:-1]):
            if m.role != "assistant":
                continue
            logged = by_full_key.get(k[i], [])
            alive = [a.request_id for a in logged if a.request_id not in reasons]
            sources.extend(r for r in alive if r not in sources)
            if not alive and any(reasons.get(a.request_id) in BAD_ANSWER_REASONS for a in logged):
                m.weight = 0  # history turn whose own answer was rejected: context only, not a target
        sources.append(c.request_id)
        examples.append(
            Example(
                final_request_id=c.request_id,
                request_ids=sources,
                task_type=c.task_type,
                session_id=c.row.get("session_id"),
                ts=c.row.get("ts"),
                feedback=c.feedback,
                system=c.row.get("system_text"),
                messages=c.messages,
                tools=c.tools,
                tokens=c.tokens,
                assistant_tokens=c.assistant_tokens,
                example_id=f"ex_{xxhash.xxh3_64_hexdigest(c.request_id.encode())}",
            )
        )
    return examples


def _apply_pii(examples: list[Example], mode: str) -> Counter[str]:
    """Redact (or, in keep/drop mode, only count) secrets and PII in every text of every example."""
    redactor = CachedRedactor()
    total: Counter[str] = Counter()
    for ex in examples:
        counts: Counter[str] = Counter()
        system = redactor.redact(ex.system, counts)
        contents = [redactor.redact(m.content, counts) for m in ex.messages]
        calls = [[{**c, "arguments": redactor.redact(c.get("arguments"), counts)} for c in m.tool_calls or []]
                 for m in ex.messages]
        if mode == "redact":
            ex.system = system
            for m, content, redacted_calls in zip(ex.messages, contents, calls, strict=True):
                m.content = content
                m.tool_calls = redacted_calls or m.tool_calls
        ex.findings = dict(counts)
        total.update(counts)
    return total


def _rank(ex: Example) -> tuple[int, float, str]:
    """Representative order within a duplicate cluster: positively rated, then most recent, then id."""
    positive = 0 if (ex.feedback or 0) > 0 else 1
    ts = -ex.ts.timestamp() if ex.ts is not None else 0.0
    return positive, ts, ex.final_request_id


def _deduplicate(
    examples: list[Example], texts: list[str], hash_sets: list[np.ndarray], sigs: np.ndarray, cfg: dd.DedupConfig
) -> tuple[dict[int, tuple[str, int, float]], list[tuple[int, int, float]]]:
    """{dropped example index: (reason, representative index, Jaccard)} and the verified near pairs."""
    dup_of: dict[int, tuple[str, int, float]] = {}
    if cfg.exact:
        by_key: dict[bytes, list[int]] = defaultdict(list)
        for i, text in enumerate(texts):
            by_key[dd.exact_key(text)].append(i)
        for group in by_key.values():
            if len(group) > 1:
                best = min(group, key=lambda i: _rank(examples[i]))
                dup_of.update({i: ("duplicate", best, 1.0) for i in group if i != best})
    near_pairs: list[tuple[int, int, float]] = []
    if cfg.near:
        alive = [i for i in range(len(examples)) if i not in dup_of]
        if len(alive) > 1:
            local = dd.near_duplicate_pairs([hash_sets[i] for i in alive], sigs[alive], cfg)
            near_pairs = [(alive[i], alive[j], jac) for i, j, jac in local]
            uf = dd.UnionFind(len(examples))
            for i, j, _ in near_pairs:
                uf.union(i, j)
            clusters: dict[int, list[int]] = defaultdict(list)
            for i in alive:
                clusters[uf.find(i)].append(i)
            best_jac: dict[int, float] = {}
            for i, j, jac in near_pairs:
                best_jac[i] = max(best_jac.get(i, 0.0), jac)
                best_jac[j] = max(best_jac.get(j, 0.0), jac)
            for group in clusters.values():
                if len(group) > 1:
                    best = min(group, key=lambda i: _rank(examples[i]))
                    dup_of.update({i: ("near_duplicate", best, best_jac.get(i, 0.0)) for i in group if i != best})
    return dup_of, near_pairs


def _last_user_text(ex: Example) -> str:
    for m in reversed(ex.messages):
        if m.role == "user" and m.content:
            return m.content
    return ""


# --- writing and verification ------------------------------------------------------------------


def _slug(task: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in task).strip("._") or "task"
    return safe[:80]


def _write_jsonl(out: Path, kept: list[Example], render: Any, per_task: bool) -> dict[str, dict[str, Any]]:
    """Write the split files; returns {relative path: {split, task_type, examples}} and sets line numbers."""
    groups: dict[str, list[Example]] = defaultdict(list)
    for ex in kept:
        rel = f"tasks/{_slug(ex.task_type)}/{ex.split}.jsonl" if per_task else f"{ex.split}.jsonl"
        groups[rel].append(ex)
    prefixes = {f"tasks/{_slug(ex.task_type)}/" for ex in kept} if per_task else {""}
    for prefix in prefixes:  # both files always exist, possibly empty, so readers need no special case
        for split in ("train", "eval"):
            groups.setdefault(f"{prefix}{split}.jsonl", [])
    task_of_prefix = {f"tasks/{_slug(ex.task_type)}/": ex.task_type for ex in kept} if per_task else {}
    files: dict[str, dict[str, Any]] = {}
    for rel in sorted(groups):
        exs = sorted(groups[rel], key=lambda e: (e.task_type, e.ts.timestamp() if e.ts else 0.0, e.final_request_id))
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            for line_no, ex in enumerate(exs, start=1):
                fh.write(dumps(render(ex)) + "\n")
                ex.file, ex.line = rel, line_no
        files[rel] = {
            "split": "eval" if rel.endswith("eval.jsonl") else "train",
            "task_type": task_of_prefix.get(rel.rsplit("/", 1)[0] + "/"),
            "examples": len(exs),
            "sha256": _sha256(path),
        }
    return files


def _read_jsonl(path: Path) -> list[Any]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _validate_written(out: Path, files: dict[str, dict[str, Any]], validate: Any, max_tokens: int,
                      kept: list[Example]) -> dict[str, Any]:
    """Re-read every written file and run the target format's validator on each record."""
    tokens = {(ex.file, ex.line): ex.tokens for ex in kept}
    errors: Counter[str] = Counter()
    invalid = 0
    checked = 0
    for rel in files:
        for line_no, record in enumerate(_read_jsonl(out / rel), start=1):
            errs = validate(record, max_tokens, tokens.get((rel, line_no)))
            checked += 1
            invalid += bool(errs)
            errors.update(errs)
    return {"records_checked": checked, "invalid_records": invalid, "errors": dict(sorted(errors.items()))}


def _leakage_check(out: Path, files: dict[str, dict[str, Any]], cfg: dd.DedupConfig) -> dict[str, Any]:
    """Every eval record against every train record, as written: LSH candidates, exact Jaccard."""
    train = [r for rel, f in files.items() if f["split"] == "train" for r in _read_jsonl(out / rel)]
    evals = [r for rel, f in files.items() if f["split"] == "eval" for r in _read_jsonl(out / rel)]
    result: dict[str, Any] = {"threshold": cfg.threshold, "eval_checked": len(evals), "train_indexed": len(train),
                              "pairs": 0, "examples": [], "lsh_params": [cfg.check_bands, cfg.check_rows]}
    if not train or not evals:
        return result
    train_h = [dd.shingle_hashes(record_dialog_text(r), cfg.ngram) for r in train]
    eval_h = [dd.shingle_hashes(record_dialog_text(r), cfg.ngram) for r in evals]
    pairs = dd.cross_pairs(eval_h, dd.signatures_from_hashes(eval_h, cfg), train_h,
                           dd.signatures_from_hashes(train_h, cfg), cfg)
    result["pairs"] = len(pairs)
    result["examples"] = [{"eval_index": i, "train_index": j, "jaccard": round(jac, 4)} for i, j, jac in pairs[:20]]
    return result


def _request_outcomes(cands: list[Candidate], reasons: dict[str, str], examples: list[Example],
                      dup_of: dict[int, tuple[str, int, float]]) -> dict[str, str]:
    """'kept' or the drop reason for every request (a request kept in any example is kept)."""
    status = dict(reasons)
    dedup_reason: dict[str, str] = {}
    for i, ex in enumerate(examples):
        for rid in ex.request_ids:
            if i in dup_of:
                dedup_reason.setdefault(rid, dup_of[i][0])
            else:
                status[rid] = "kept"
    for rid, reason in dedup_reason.items():
        status.setdefault(rid, reason)
    missing = [c.request_id for c in cands if c.request_id not in status]
    if missing:  # cannot happen: every survivor is the final state or a prefix of one
        raise DatasetError(f"internal: {len(missing)} requests have no outcome (e.g. `{missing[0]}`).")
    return status


def _write_lineage(path: Path, examples: list[Example], dup_of: dict[int, tuple[str, int, float]],
                   near_pairs: list[tuple[int, int, float]], cands: list[Candidate], reasons: dict[str, str],
                   status: dict[str, str], ctx: FilterContext) -> None:
    rows: list[dict[str, Any]] = []
    for i, ex in enumerate(examples):
        if i in dup_of:
            continue
        rows.append({
            "kind": "example", "example_id": ex.example_id, "split": ex.split, "task_type": ex.task_type,
            "request_id": ex.final_request_id, "source_request_ids": ex.request_ids, "reason": None,
            "detail": None, "duplicate_of": None, "file": ex.file,
            "line": ex.line, "tokens": ex.tokens, "assistant_tokens": ex.assistant_tokens,
            "redactions": sum(ex.findings.values()),
        })
    task_of = {c.request_id: c.task_type for c in cands}
    by_final = {ex.final_request_id: i for i, ex in enumerate(examples)}
    example_of: dict[str, int] = {}
    for i, ex in enumerate(examples):
        for rid in ex.request_ids:
            example_of.setdefault(rid, i)
    for c in cands:
        reason = status[c.request_id]
        if reason == "kept":
            continue
        detail = ctx.details.get(c.request_id)
        dup = None
        if reason in DEDUP_REASONS:
            i = by_final.get(c.request_id, example_of.get(c.request_id, -1))
            if i in dup_of:
                _, best, jac = dup_of[i]
                dup = examples[best].example_id
                detail = f"Jaccard {jac:.3f} with {examples[best].final_request_id}"
        rows.append({
            "kind": "dropped", "example_id": None, "split": None, "task_type": task_of[c.request_id],
            "request_id": c.request_id, "source_request_ids": [c.request_id], "reason": reason, "detail": detail,
            "duplicate_of": dup, "file": None, "line": None, "tokens": c.tokens or None,
            "assistant_tokens": c.assistant_tokens or None, "redactions": None,
        })
    pq.write_table(pa.Table.from_pylist(rows, schema=LINEAGE_SCHEMA), path, compression="zstd")


# --- manifest and card -----------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _store_fingerprint(workdir: Path) -> dict[str, Any]:
    files = sorted(Path(p) for p in Path(workdir).glob("requests/*/*.parquet"))
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


def _manifest(workdir: Path, cfg: DatasetConfig, cands: list[Candidate], reasons: dict[str, str],
              status: dict[str, str], active: tuple[str, ...], labels_info: dict[str, Any],
              examples: list[Example], dup_of: dict[int, tuple[str, int, float]], kept: list[Example],
              files: dict[str, dict[str, Any]], pii_found: Counter[str], validation: dict[str, Any],
              leakage: dict[str, Any], split_stats: Any, near_pairs: list[tuple[int, int, float]],
              sig_seconds: float, timings: dict[str, float], encoding: str) -> dict[str, Any]:
    reason_order = [*active, *DEDUP_REASONS]
    dropped = Counter(v for v in status.values() if v != "kept")
    samples: dict[str, list[str]] = defaultdict(list)
    for c in cands:
        r = status[c.request_id]
        if r != "kept" and len(samples[r]) < cfg.dropped_sample_size:
            samples[r].append(c.request_id)
    n_dup = sum(1 for r, _, _ in dup_of.values() if r == "duplicate")
    n_near = sum(1 for r, _, _ in dup_of.values() if r == "near_duplicate")
    train = [ex for ex in kept if ex.split == "train"]
    evals = [ex for ex in kept if ex.split == "eval"]
    per_task: dict[str, Counter[str]] = defaultdict(Counter)
    for c in cands:
        per_task[c.task_type]["requests_in"] += 1
        per_task[c.task_type][f"requests_{'kept' if status[c.request_id] == 'kept' else 'dropped'}"] += 1
    for ex in examples:
        per_task[ex.task_type]["examples_built"] += 1
    for ex in kept:
        per_task[ex.task_type][ex.split or "train"] += 1
        per_task[ex.task_type][f"{ex.split}_tokens"] += ex.tokens
    n_train_tokens = sum(min(ex.tokens, cfg.max_example_tokens) for ex in train)
    epochs = _epochs(cfg, len(train))
    billed = n_train_tokens * epochs
    n_examples = len(examples)
    docs_per_s = round(n_examples / sig_seconds) if sig_seconds > 0 else None
    counts: dict[str, Any] = {
        "requests_in": len(cands),
        "requests_kept": sum(1 for v in status.values() if v == "kept"),
        "requests_dropped": sum(dropped.values()),
        "dropped": {r: dropped.get(r, 0) for r in reason_order if r in dropped or r in active},
        "examples_built": n_examples,
        "duplicates": n_dup,
        "near_duplicates": n_near,
        "examples_kept": len(kept),
        "train": len(train),
        "eval": len(evals),
    }
    if counts["requests_in"] != counts["requests_kept"] + counts["requests_dropped"]:
        raise DatasetError("internal: request counts do not reconcile (in != kept + dropped).")
    stages = [
        {"stage": "load", "requests": len(cands)},
        *[{"stage": f"filter:{r}", "dropped": sum(1 for v in reasons.values() if v == r)} for r in active],
        {"stage": "session_collapse", "requests": len(cands) - len(reasons), "examples": n_examples},
        {"stage": "dedup:exact", "dropped_examples": n_dup},
        {"stage": "dedup:near", "dropped_examples": n_near},
        {"stage": "split", "train": len(train), "eval": len(evals)},
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
        "stages": stages,
        "dropped_samples": dict(samples),
        "per_task": {t: dict(v) for t, v in sorted(per_task.items())},
        "task_labels": _task_labels(workdir),
        "dedup": {
            "duplicate_rate": round(n_dup / n_examples, 4) if n_examples else 0.0,
            "near_duplicate_rate": round(n_near / n_examples, 4) if n_examples else 0.0,
            "near_pairs_verified": len(near_pairs),
            "method": f"word {cfg.dedup.ngram}-gram shingles of user+assistant text; MinHash num_perm="
                      f"{cfg.dedup.num_perm} (datasketch affine32, seed {cfg.dedup.seed}, xxh32 shingle hashes); "
                      f"MinHashLSH params=({cfg.dedup.bands}, {cfg.dedup.rows}); exact Jaccard >= {cfg.dedup.threshold}",
            "signature_seconds": round(sig_seconds, 4),
            "signature_docs_per_second": docs_per_s,
        },
        "split": {"groups": split_stats.groups, "largest_group": split_stats.largest_group,
                  "session_links": split_stats.session_links, "near_links": split_stats.near_links,
                  "prompt_links": split_stats.prompt_links, "group_threshold": cfg.split_group_threshold},
        "leakage": leakage,
        "validation": validation,
        "pii": {"mode": cfg.pii, "found": dict(sorted(pii_found.items())),
                "examples_with_findings": sum(1 for ex in examples if ex.findings)},
        "tokens": {
            "encoding": encoding,
            "train": sum(ex.tokens for ex in train),
            "eval": sum(ex.tokens for ex in evals),
            "train_assistant": sum(ex.assistant_tokens for ex in train),
            "max_example": max((ex.tokens for ex in kept), default=0),
        },
        "estimate": {
            "epochs": epochs,
            "billed_training_tokens": billed,
            "price_per_million_training_tokens": cfg.price_per_million_training_tokens,
            "training_cost_usd": round(billed / 1e6 * cfg.price_per_million_training_tokens, 4),
            "target_model": cfg.target_model,
        },
        "files": files,
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }


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
        f"| {v.get('train', 0)} | {v.get('eval', 0)} | {v.get('train_tokens', 0)} |"
        for t, v in m["per_task"].items()
    )
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
        records_checked=validation["records_checked"],
        invalid_records=validation["invalid_records"],
        train_tokens=m["tokens"]["train"],
        encoding=m["tokens"]["encoding"],
        epochs=m["estimate"]["epochs"],
        billed_tokens=m["estimate"]["billed_training_tokens"],
        price=m["estimate"]["price_per_million_training_tokens"],
        cost=f"{m['estimate']['training_cost_usd']:.2f}",
        target_model=m["estimate"]["target_model"],
        labels_note=m["labels"]["note"] or "Task types and regeneration/edit/feedback signals from `audit/request_labels.parquet`.",
    )


def _swap_in(tmp_dir: Path, out_dir: Path) -> None:
    """Replace `out_dir` with `tmp_dir` so readers never see half a dataset."""
    old = out_dir.with_name(f".dataset.old-{os.getpid()}")
    if out_dir.exists():
        os.replace(out_dir, old)
    os.replace(tmp_dir, out_dir)
    shutil.rmtree(old, ignore_errors=True)
