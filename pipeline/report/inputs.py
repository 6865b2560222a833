"""Read what the earlier stages wrote into one `Facts` record. Never recomputes a stage's figures.

Sources, each optional (a missing one leaves its figures `None` with the reason in `facts.missing`):

  WORKDIR/ingest_manifest.json, WORKDIR/rejects/   ingest (counts, rejects)
  WORKDIR/requests/                                 the store: plain counts no audit table carries
  WORKDIR/audit/summary.json                        sections cost, tasks, cache, traffic
  WORKDIR/audit/*.parquet                           task_types, signal_rates, cost_by_period, cache_*
  WORKDIR/dataset/manifest.json                     the dataset builder's counts and checks
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pipeline.report.facts import Facts, TaskFacts
from pipeline.report.thresholds import ReportConfig
from pipeline.sql import SqlDir
from pipeline.workdir.paths import workdir_paths

BINS_PER_DECADE = 8

# The report's own SQL files (`pipeline/report/sql/`): read-only counts over the store and audit tables.
SQL = SqlDir("pipeline.report")
fetch = SQL.fetch_dicts


def read_facts(workdir: Path, cfg: ReportConfig) -> Facts:
    workdir = Path(workdir)
    facts = Facts()
    _ingest(workdir, facts)
    summary = _json(workdir_paths(workdir).audit_summary)
    facts.sources["audit_summary"] = summary is not None
    sections = (summary or {}).get("sections", {})
    skipped = (summary or {}).get("skipped", [])

    def section(name: str) -> dict[str, Any] | None:
        value = sections.get(name)
        if isinstance(value, dict):
            return value
        if summary is None:
            reason = f"`{workdir}/audit/summary.json` not found (run `logaudit audit {workdir}`)"
        elif f"audit.{name}" in skipped:
            reason = f"the `audit.{name}` module is not installed (skipped by the audit)"
        else:
            reason = f"audit/summary.json has no `{name}` section"
        facts.sources[f"audit_{name}"] = False
        _miss_section(facts, name, reason)
        return None

    _store(workdir, facts, cfg)
    cost = section("cost")
    if cost is not None:
        facts.sources["audit_cost"] = True
        _cost(cost, facts)
    tasks = section("tasks")
    facts.sources["audit_tasks"] = tasks is not None
    _tasks(workdir, tasks, facts, cfg)
    cache = section("cache")
    if cache is not None:
        facts.sources["audit_cache"] = True
        _cache(cache, facts)
    traffic = section("traffic")
    if traffic is not None:
        facts.sources["audit_traffic"] = True
        _traffic(traffic, facts)
    _daily_spend(workdir, facts)
    _dataset(workdir, facts, cfg)
    return facts


# Which figures each audit section provides, so a missing section explains every one of them.
_SECTION_FIGURES = {
    "cost": ("spend_window_usd", "monthly_run_rate_usd", "monthly_api_only_usd"),
    "tasks": ("task_types", "regeneration_rate", "edit_rate", "negative_feedback_rate"),
    "cache": ("simulated_share", "reported_hit_share", "prefix_breakers", "monthly_ideal_caching_usd",
              "token_composition", "tokens_cached_reported"),
    "traffic": ("latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "weekly_growth_rate",
                "projected_6_month_factor"),
}


def _miss_section(facts: Facts, name: str, reason: str) -> None:
    for figure in _SECTION_FIGURES.get(name, ()):
        facts.miss(figure, reason)


def _json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def _get(d: dict[str, Any] | None, path: str) -> Any:
    """The value at dotted `path` in `d`, None when absent. One name per figure: the name the stage
    that computes it writes (schemas/audit.py declares the audit's)."""
    node: Any = d
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


# --- ingest and store -------------------------------------------------------------------------


def _ingest(workdir: Path, facts: Facts) -> None:
    manifest = _json(workdir_paths(workdir).ingest_manifest)
    facts.sources["ingest_manifest"] = manifest is not None
    rejects_dir = workdir_paths(workdir).rejects
    if rejects_dir.is_dir():
        # The rejects folder holds every run's rejects; the manifest only the last run's.
        count = 0
        for path in sorted(rejects_dir.glob("*.jsonl")):
            with path.open(encoding="utf-8") as fh:
                for line in fh:
                    try:
                        count += json.loads(line).get("kind") == "rejected"
                    except json.JSONDecodeError:
                        continue
        facts.rejected_at_ingest = count
    elif manifest is not None:
        facts.rejected_at_ingest = int(manifest.get("totals", {}).get("rejected", 0))
    else:
        facts.miss("rejected_at_ingest", f"no `{workdir}/ingest_manifest.json` (run `logaudit ingest`)")


def _store(workdir: Path, facts: Facts, cfg: ReportConfig) -> None:
    from pipeline.errors import StoreError
    from pipeline.workdir.store import connect_store

    try:
        con = connect_store(workdir)
    except StoreError as e:
        facts.sources["store"] = False
        for figure in ("requests_total", "window_days", "rate_limited_share", "reasoning_share"):
            facts.miss(figure, str(e))
        return
    facts.sources["store"] = True
    try:
        row = fetch(con, "store_overview", long_output_tokens=cfg.long_output_tokens)[0]
        total = int(row["requests"])
        facts.requests_total = total
        facts.requests_succeeded = int(row["succeeded"])
        if total:
            facts.rate_limited_share = row["rate_limited"] / total
            facts.error_share = row["errors"] / total
            facts.reasoning_share = row["reasoning_or_long"] / total
        if row["first_ts"] is not None:
            facts.window_start = row["first_ts"].date().isoformat()
            facts.window_end = row["last_ts"].date().isoformat()
            facts.window_days = float((row["last_ts"].date() - row["first_ts"].date()).days + 1)
        providers = fetch(con, "provider_shares")
        if total:
            facts.provider_shares = {r["provider"]: r["requests"] / total for r in providers}
        facts.daily = [{"date": r["day"].isoformat(), "requests": int(r["requests"])} for r in fetch(con, "daily_requests")]
        bins = fetch(con, "latency_histogram", bins_per_decade=BINS_PER_DECADE)
        if bins:
            lo, hi = min(b["bin"] for b in bins), max(b["bin"] for b in bins)
            counts = {b["bin"]: int(b["requests"]) for b in bins}
            facts.latency_histogram = {
                "edges": [round(10 ** (k / BINS_PER_DECADE), 1) for k in range(lo, hi + 2)],
                "counts": [counts.get(k, 0) for k in range(lo, hi + 1)],
            }
    finally:
        con.close()


# --- audit sections ---------------------------------------------------------------------------


def _cost(cost: dict[str, Any], facts: Facts) -> None:
    facts.spend_window_usd = _num(_get(cost, "total_usd"))
    facts.monthly_run_rate_usd = _num(_get(cost, "monthly_run_rate_usd"))
    facts.monthly_api_only_usd = _num(_get(cost, "monthly_run_rate_without_caching_usd"))


def _daily_spend(workdir: Path, facts: Facts) -> None:
    """Per-day spend and cacheable shares, and token totals, from the audit's Parquet tables."""
    import duckdb

    costs = workdir_paths(workdir).audit_table("cost_by_period")
    per_request = workdir_paths(workdir).audit_table("request_costs")
    cache_days = workdir_paths(workdir).audit_table("cache_by_day")
    con = duckdb.connect()
    try:
        spend = {r["day"].isoformat(): r for r in fetch(con, "daily_spend", path=str(costs))} if costs.is_file() else {}
        cache = {r["day"].isoformat(): r for r in fetch(con, "daily_cache", path=str(cache_days))} \
            if cache_days.is_file() else {}
        if per_request.is_file():
            totals = fetch(con, "token_totals", path=str(per_request))[0]
            facts.tokens_input = _int(totals["input_tokens"])
            facts.tokens_output = _int(totals["output_tokens"])
            if facts.token_composition is not None and facts.tokens_output is not None:
                facts.token_composition["output"] = facts.tokens_output
            if facts.tokens_cached_reported is None:
                facts.tokens_cached_reported = _int(totals["cache_read_tokens"])
        else:
            for figure in ("tokens_input", "tokens_output"):
                facts.miss(figure, f"`{per_request}` not found (the cost audit did not run)")
    finally:
        con.close()
    for d in facts.daily:
        if spend:
            r = spend.get(d["date"])
            d["spend_usd"] = _num(r["spend_usd"]) if r else 0.0
        c = cache.get(d["date"])
        d["cacheable_share_as_logged"] = _num(c["as_logged_share"]) if c else None
        d["cacheable_share_ideal"] = _num(c["ideal_share"]) if c else None
        d["reported_cached_share"] = _num(c["reported_cached_share"]) if c else (
            _num(spend[d["date"]]["reported_cached_share"]) if d["date"] in spend else None
        )


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _tasks(workdir: Path, tasks: dict[str, Any] | None, facts: Facts, cfg: ReportConfig) -> None:
    path = workdir_paths(workdir).audit_table("task_types")
    if not path.is_file():
        facts.miss("task_types", f"`{path}` not found (the task-type audit did not run)")
        return
    import pyarrow.parquet as pq

    rows = pq.read_table(path).to_pylist()
    for r in rows:
        facts.task_types.append(TaskFacts(
            id=str(r["task_type"]),
            label=str(r.get("label") or r["task_type"]),
            requests=int(r["requests"]),
            share=_num(r.get("share_requests")),
            input_tokens=r.get("input_tokens"),
            output_tokens=r.get("output_tokens"),
            spend_usd=_num(r.get("spend_usd")),
            consistency=format_consistency(r),
            repetitiveness=_num(r.get("repetitiveness")),
            clean_examples=r.get("clean_examples"),
            regeneration_rate=_num(r.get("regeneration_rate")),
            edit_rate=_num(r.get("edit_rate")),
            negative_feedback_rate=_num(r.get("negative_feedback_rate")),
            output_format="json" if (_num(r.get("json_output_rate")) or 0) >= 0.5 else "text",
        ))
    facts.task_type_count = len([t for t in facts.task_types if t.id != "other"])
    rates = workdir_paths(workdir).audit_table("signal_rates")
    if rates.is_file():
        overall = [r for r in pq.read_table(rates).to_pylist() if r["dimension"] == "all"]
        if overall:
            facts.regeneration_rate = _num(overall[0]["regeneration_rate"])
            facts.edit_rate = _num(overall[0]["edit_rate"])
            facts.negative_feedback_rate = _num(overall[0]["negative_feedback_rate"])
            facts.signal_counts = {k: int(overall[0][k]) for k in (
                "answered", "regenerated", "edited", "feedback_count", "negative_feedback") if overall[0].get(k) is not None}
    else:
        for figure in ("regeneration_rate", "edit_rate", "negative_feedback_rate"):
            facts.miss(figure, f"`{rates}` not found")
    _task_cache_shares(workdir, facts)


def format_consistency(row: dict[str, Any]) -> float | None:
    """Share of answers in the task's majority output format: JSON with its most common key set,
    or free text. This is the checklist's 'all examples of a task follow one schema'."""
    json_rate = _num(row.get("json_output_rate"))
    if json_rate is None:
        return None
    if json_rate >= 0.5:
        return json_rate * (_num(row.get("json_keyset_stability")) or 1.0)
    return 1.0 - json_rate


def _task_cache_shares(workdir: Path, facts: Facts) -> None:
    """Per-task cacheable share from the cache audit's per-task table, when it wrote one."""
    path = workdir_paths(workdir).audit_table("cache_by_task_type")
    if not path.is_file() or not facts.task_types:
        return
    import pyarrow.parquet as pq

    by_id = {t.id: t for t in facts.task_types}
    for r in pq.read_table(path).to_pylist():
        t = by_id.get(str(r.get("task_type")))
        if t is None:
            continue
        t.cacheable_share = _num(_get(r, "ideal_share"))
        if t.spend_usd is None:
            t.spend_usd = _num(r.get("spend_usd"))


def _cache(cache: dict[str, Any], facts: Facts) -> None:
    overall = cache.get("overall") or {}
    facts.reported_hit_share = _num(overall.get("reported_cached_share"))
    shares = {k.removesuffix("_share"): _num(overall.get(k)) for k in ("as_logged_share", "ideal_bp_share", "ideal_share")}
    facts.simulated_share = {k: v for k, v in shares.items() if v is not None} or None
    if facts.simulated_share:
        facts.ideal_rule_set = "ideal" if "ideal" in facts.simulated_share else max(
            facts.simulated_share, key=lambda k: facts.simulated_share[k]  # type: ignore[index]
        )
    else:
        facts.miss("simulated_share", "the cache audit simulated no request")
    projections = cache.get("projections_usd_per_month") or {}
    facts.monthly_ideal_caching_usd = _num(projections.get("api_ideal_caching"))
    if facts.monthly_api_only_usd is None:
        facts.monthly_api_only_usd = _num(projections.get("api_without_caching"))
    segments = _get(cache, "tokens.segments")
    if isinstance(segments, dict):
        # The new turn is what the user sent in this request: "user" in the checklist's words.
        names = {"tools": "tools", "system": "system", "history": "history", "new_turn": "user"}
        facts.token_composition = {names.get(k, k): int(v) for k, v in segments.items() if _num(v) is not None}
    facts.tokens_cached_reported = _get(cache, "cacheable_tokens.reported_cache_read")
    calibration = cache.get("calibration")
    facts.cache_calibration = calibration if isinstance(calibration, dict) else None
    facts.prefix_breakers = []
    labels = {t.id: t.label for t in facts.task_types}
    for b in cache.get("prefix_breakers") or []:
        if not isinstance(b, dict):
            continue
        facts.prefix_breakers.append({
            "kind": b.get("breaker_kind"),
            "task_type": b.get("task_type"),
            "task_label": labels.get(str(b.get("task_type"))),
            "segment": b.get("breaker_segment"),
            "requests": b.get("requests"),
            "position_tokens": b.get("median_divergence_offset_tokens"),
            "stable_tokens_after": b.get("median_stable_tokens_after"),
            "example": b.get("example_span"),
            "tokens_saved": b.get("tokens_saved"),
            "saving_usd": b.get("usd_saved"),
            "monthly_saving_usd": b.get("usd_saved_per_month"),
            "fix": f"move the {b.get('breaker_kind') or 'dynamic'} span out of the {b.get('breaker_segment') or 'prompt'} "
                   "to after the stable part (e.g. into the user turn)",
        })


def _traffic(traffic: dict[str, Any], facts: Facts) -> None:
    facts.latency_p50_ms = _num(_get(traffic, "latency.p50_ms"))
    facts.latency_p90_ms = _num(_get(traffic, "latency.p90_ms"))
    facts.latency_p99_ms = _num(_get(traffic, "latency.p99_ms"))
    facts.weekly_growth_rate = _num(_get(traffic, "growth.weekly_growth_rate"))
    facts.projected_6_month_factor = _num(_get(traffic, "growth.projected_6_month_factor"))
    rate_limited = _num(_get(traffic, "errors.rate_limited_share"))
    if rate_limited is not None:
        facts.rate_limited_share = rate_limited


# --- dataset ----------------------------------------------------------------------------------


def _dataset(workdir: Path, facts: Facts, cfg: ReportConfig) -> None:
    manifest = _json(workdir_paths(workdir).dataset_manifest)
    facts.sources["dataset_manifest"] = manifest is not None
    if manifest is None:
        reason = f"`{workdir}/dataset/manifest.json` not found (run `logaudit dataset {workdir}`)"
        for figure in ("dataset_train", "duplicate_share", "leakage_pairs", "distribution_distance",
                       "edge_case_share", "format_consistency", "sensitive_share"):
            facts.miss(figure, reason)
    else:
        counts = manifest.get("counts", {})
        facts.dataset_train = counts.get("train")
        facts.dataset_eval = counts.get("eval")
        if isinstance(counts.get("dropped"), dict):
            facts.dataset_filtered_by = {str(k): int(v) for k, v in counts["dropped"].items()}
        built = counts.get("examples_built")
        dedup = manifest.get("dedup", {})
        if "duplicate_rate" in dedup:
            facts.duplicate_share = float(dedup["duplicate_rate"]) + float(dedup.get("near_duplicate_rate", 0.0))
        facts.leakage_pairs = _get(manifest, "leakage.pairs")
        facts.training_cost_usd = _num(_get(manifest, "estimate.training_cost_usd"))
        if facts.training_cost_usd is not None and _get(manifest, "estimate.basis"):
            facts.training_cost_basis = str(_get(manifest, "estimate.basis"))
        elif facts.training_cost_usd is not None:
            facts.training_cost_basis = (
                f"{_get(manifest, 'estimate.billed_training_tokens') or 0:,} billed tokens at "
                f"{_get(manifest, 'estimate.price_per_million_training_tokens')} USD/1M "
                f"({_get(manifest, 'estimate.target_model')})"
            )
        by_id = {t.id: t for t in facts.task_types}
        for task_id, counts in (manifest.get("per_task") or {}).items():
            t = by_id.get(str(task_id))
            if t is not None:
                t.eval_examples = int(counts.get("eval", 0))
                t.dataset_examples = int(counts.get("train", 0)) + t.eval_examples
        for t in facts.task_types:
            if t.dataset_examples is None and manifest.get("per_task") is not None:
                t.dataset_examples, t.eval_examples = 0, 0
        with_findings = _get(manifest, "pii.examples_with_findings")
        if with_findings is not None and built:
            facts.sensitive_share = with_findings / built
        else:
            facts.miss("sensitive_share", "the dataset manifest has no `pii.examples_with_findings`")
    _data_quality(workdir, facts, cfg)


def _data_quality(workdir: Path, facts: Facts, cfg: ReportConfig) -> None:
    """The checklist inputs that need a join of the dataset lineage with the audit's labels."""
    import duckdb

    from pipeline.workdir.store import sql_literal

    tables = {
        "lineage": workdir_paths(workdir).lineage,
        "request_labels": workdir_paths(workdir).audit_table("request_labels"),
        "task_types": workdir_paths(workdir).audit_table("task_types"),
    }
    con = duckdb.connect()
    try:
        for view, path in tables.items():
            if path.is_file():
                con.execute(f"CREATE VIEW {view} AS SELECT * FROM read_parquet({sql_literal(path)})")
        have = {view for view, path in tables.items() if path.is_file()}

        if "request_labels" in have:
            row = fetch(con, "dq_label_accuracy")[0]
            facts.label_accuracy_proxy = row["accepted"] / row["answered"] if row["answered"] else None
        else:
            facts.miss("label_accuracy_proxy", f"`{tables['request_labels']}` not found (the task audit did not run)")

        if {"lineage", "request_labels"} <= have and facts.window_end is not None:
            from datetime import UTC, datetime, timedelta

            end = datetime.fromisoformat(facts.window_end).replace(tzinfo=UTC) + timedelta(days=1)
            rows = fetch(con, "dq_task_mix", recent_start=end - timedelta(days=cfg.recent_days))
            train_n, recent_n = sum(r["train"] for r in rows), sum(r["recent"] for r in rows)
            if train_n and recent_n:
                facts.train_mix = {r["task_type"]: r["train"] / train_n for r in rows}
                facts.recent_mix = {r["task_type"]: r["recent"] / recent_n for r in rows}
                facts.distribution_distance = 0.5 * sum(
                    abs(facts.train_mix[k] - facts.recent_mix[k]) for k in facts.train_mix
                )
        else:
            facts.miss("distribution_distance", "needs dataset/lineage.parquet and audit/request_labels.parquet")

        if {"lineage", "task_types"} <= have:
            row = fetch(con, "dq_edge_cases", rare_share=cfg.dq_rare_task_share)[0]
            facts.edge_case_share = row["edge_cases"] / row["examples"] if row["examples"] else None
            weights = {r["task_type"]: r["train"] for r in fetch(con, "dq_train_by_task")}
            scored = [(weights.get(t.id, 0), t.consistency) for t in facts.task_types if t.consistency is not None]
            total = sum(w for w, _ in scored)
            if total:
                facts.format_consistency = sum(w * c for w, c in scored) / total
        else:
            reason = "needs dataset/lineage.parquet and audit/task_types.parquet"
            facts.miss("edge_case_share", reason)
            facts.miss("format_consistency", reason)
        for t in facts.task_types:
            if "lineage" in have:
                t.train_examples = weights.get(t.id, 0) if "task_types" in have else None
    finally:
        con.close()
