"""From measured facts to the report: the five signs, the eight-factor framework, the volume and
spend rules, cost projections with break-even, the data-quality checklist and THE decision.

The decision (`decide`) is computed once, here, with a closed set of values (`DECISIONS`), the
chain of checks that led to it and the task types for each action; report.md, report.html, the
CLI line, report.json and the weekly report all render that one object. The eight-factor count
is evidence shown beside it, not a second verdict.

Pure functions over `Facts` and `ReportConfig` (no files), so every rule is testable with a
hand-built `Facts`. Each threshold used is copied into the output next to the value it was
compared with; a figure that was not measured yields `None` and the rule says so rather than
guessing.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from pipeline.report.calibration import calibration_table
from pipeline.report.facts import Facts, TaskFacts
from pipeline.report.thresholds import ReportConfig

SCHEMA_VERSION = 2
CACHING, FINE_TUNING, UNKNOWN = "caching", "fine-tuning", "unknown"

# The closed set of decisions, strongest move first, with the title every output shows.
DECISIONS: dict[str, str] = {
    "migrate": "Migrate",
    "pilot_fine_tune": "Pilot a fine-tune",
    "prepare_dataset": "Prepare the dataset",
    "fix_caching_first": "Fix caching first",
    "stay_with_caching": "Stay with caching",
    "insufficient_data": "Not enough data",
}


def build_report(facts: Facts, cfg: ReportConfig) -> dict[str, Any]:
    """The whole report.json document (see `schemas/report.py` for its contract)."""
    tasks = task_table(facts, cfg)
    cost = cost_section(facts, cfg, tasks)
    signs = five_signs(facts, cfg, cost)
    framework = decision_framework(facts, cfg, cost)
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "sources": dict(facts.sources),
        "window": {"start": facts.window_start, "end": facts.window_end, "days": _round(facts.window_days, 2)},
        "requests": {
            "total": facts.requests_total,
            "succeeded": facts.requests_succeeded,
            "rejected_at_ingest": facts.rejected_at_ingest,
            "per_day": _round(_div(facts.requests_total, facts.window_days), 1),
            "rate_limited_share": facts.rate_limited_share,
            "error_share": facts.error_share,
            "provider_shares": facts.provider_shares,
        },
        "tokens": {
            "input": facts.tokens_input,
            "output": facts.tokens_output,
            "cached_reported": facts.tokens_cached_reported,
            "composition": facts.token_composition,
        },
        "cache": {
            "reported_hit_share": facts.reported_hit_share,
            "simulated_share": facts.simulated_share,
            "ideal_rule_set": facts.ideal_rule_set,
            "prefix_breakers": prefix_breakers(facts, cfg),
            "calibration": calibration_table(facts.cache_calibration),
        },
        "cost": cost,
        "task_types": tasks,
        "signals": signals_section(facts),
        "latency": {"p50_ms": facts.latency_p50_ms, "p90_ms": facts.latency_p90_ms, "p99_ms": facts.latency_p99_ms},
        "growth": {
            "weekly_growth_rate": facts.weekly_growth_rate,
            "projected_6_month_factor": facts.projected_6_month_factor,
        },
        "rules": published_rules(facts, cfg, tasks),
        "signs": signs,
        "framework": framework,
        "dataset": {
            "train": facts.dataset_train,
            "eval": facts.dataset_eval,
            "filtered_by": facts.dataset_filtered_by,
            "duplicate_share": facts.duplicate_share,
            "leakage_pairs": facts.leakage_pairs,
        },
        "data_quality": data_quality(facts, cfg),
        "series": {"daily": _daily_series(facts, cfg), "latency_histogram": facts.latency_histogram},
        "thresholds": _thresholds(cfg),
        "not_measured": dict(sorted(facts.missing.items())),
    }
    report["verdict"] = decide(report, cfg)
    return report


def signals_section(facts: Facts) -> dict[str, Any]:
    """Each feedback rate with its base named and counted: regeneration and edits are per answered
    request; negative feedback is per RATED response (most responses carry no rating)."""
    counts = facts.signal_counts or {}
    bases = {
        "regeneration_rate": ("regenerated", "answered", "answered requests"),
        "edit_rate": ("edited", "answered", "answered requests"),
        "negative_feedback_rate": ("negative_feedback", "feedback_count", "rated responses"),
    }
    out: dict[str, Any] = {
        "regeneration_rate": facts.regeneration_rate,
        "edit_rate": facts.edit_rate,
        "negative_feedback_rate": facts.negative_feedback_rate,
    }
    out["bases"] = {
        key: {"count": counts.get(num), "base": counts.get(den), "base_label": label,
              "display": rate_text(getattr(facts, key), counts.get(num), counts.get(den), label)}
        for key, (num, den, label) in bases.items()
    }
    return out


def rate_text(rate: float | None, count: int | None, base: int | None, label: str) -> str:
    """'17.9% of 162 rated responses (29)': a rate never without its base."""
    if rate is None:
        return "—" if not base else f"0 of {base:,} {label}"
    if base is None:
        return f"{rate:.1%} ({label})"
    return f"{rate:.1%} of {base:,} {label} ({count if count is not None else round(rate * base):,})"


# --- cost -------------------------------------------------------------------------------------


def monthly_growth_factor(facts: Facts, cfg: ReportConfig) -> float:
    """Month-over-month factor from the fitted weekly growth rate (flat when not measured)."""
    if facts.weekly_growth_rate is None:
        return 1.0
    factor = (1.0 + facts.weekly_growth_rate) ** (cfg.days_per_month / 7.0)
    return max(0.0, min(factor, cfg.max_monthly_growth_factor))


def cost_section(facts: Facts, cfg: ReportConfig, tasks: list[dict[str, Any]]) -> dict[str, Any]:
    api_only = cfg.money(facts.monthly_api_only_usd)
    ideal = cfg.money(facts.monthly_ideal_caching_usd)
    run_rate = cfg.money(facts.monthly_run_rate_usd)
    # The honest alternative to fine-tuning is fixing caching, which costs little: compare against
    # the API with ideal caching, falling back to the bill as logged when the simulation is missing.
    baseline = ideal if ideal is not None else run_rate
    migrated_share = sum(t["migrated_spend_share"] or 0.0 for t in tasks)
    hybrid = None
    if baseline is not None:
        hybrid = baseline * (1.0 - migrated_share) + cfg.local_infra_monthly_cost
    savings = None if baseline is None or hybrid is None else baseline - hybrid
    training = cfg.money(facts.training_cost_usd)
    one_time = cfg.fine_tune_one_time_cost + (training or 0.0)
    break_even = one_time / savings if savings and savings > 0 else None

    growth = monthly_growth_factor(facts, cfg)
    projection = []
    for month in range(1, cfg.projection_months + 1):
        f = growth ** (month - 1)
        projection.append({
            "month": month,
            "api_only": _round(None if api_only is None else api_only * f, 2),
            "with_ideal_caching": _round(None if baseline is None else baseline * f, 2),
            "fine_tuned_hybrid": _round(
                None if baseline is None else baseline * (1 - migrated_share) * f + cfg.local_infra_monthly_cost, 2
            ),
        })
    totals = {
        key: _round(sum(p[key] for p in projection), 2) if all(p[key] is not None for p in projection) else None
        for key in ("api_only", "with_ideal_caching", "fine_tuned_hybrid")
    }
    return {
        "currency": cfg.currency,
        "usd_to_currency": cfg.usd_to_currency,
        "window_total": _round(cfg.money(facts.spend_window_usd), 2),
        "window_total_usd": _round(facts.spend_window_usd, 4),
        "monthly_run_rate": _round(run_rate, 2),
        "monthly_api_only": _round(api_only, 2),
        "monthly_with_ideal_caching": _round(ideal, 2),
        "monthly_fine_tuned_hybrid": _round(hybrid, 2),
        "monthly_savings_if_migrated": _round(savings, 2),
        "migrated_spend_share": _round(migrated_share, 4),
        "break_even_baseline": "with_ideal_caching" if ideal is not None else "monthly_run_rate",
        "break_even_months": _round(break_even, 1),
        "break_even_month_with_growth": _break_even_with_growth(baseline, migrated_share, growth, one_time, cfg),
        "one_time_fine_tune_cost": _round(one_time, 2),
        "one_time_parts": {
            "fixed": cfg.fine_tune_one_time_cost,
            "fixed_source": cfg.money_sources()["fine_tune_one_time_cost"],
            "training_compute": _round(training, 2),
            "training_compute_basis": facts.training_cost_basis
            or "not measured: the dataset stage's estimate is missing (run `logaudit dataset`)",
        },
        "local_infra_monthly_cost": cfg.local_infra_monthly_cost,
        "money_defaults": cfg.money_sources(),
        "monthly_growth_factor": _round(growth, 4),
        "projection": projection,
        "projection_totals": totals,
    }


def _break_even_with_growth(
    baseline: float | None, migrated_share: float, growth: float, one_time: float, cfg: ReportConfig
) -> int | None:
    """First month whose cumulative savings along the growth trend repay the one-time cost."""
    if baseline is None:
        return None
    cumulative = 0.0
    for month in range(1, cfg.break_even_horizon_months + 1):
        f = growth ** (month - 1)
        cumulative += baseline * migrated_share * f - cfg.local_infra_monthly_cost
        if cumulative >= one_time:
            return month
    return None


# --- task types -------------------------------------------------------------------------------


def task_table(facts: Facts, cfg: ReportConfig) -> list[dict[str, Any]]:
    """Per task type: volume, tokens, spend, caching, fit, dataset examples, savings, rank.

    Readiness is counted in DATASET examples (what the dataset stage kept for the type: a
    multi-turn session is one example), not in clean requests. Candidates rank by the guides'
    task-type fit first (classification and extraction, then fixed-format generation, then
    open-ended text), then by projected savings; the reason is shown per row."""
    months = _div(facts.window_days, cfg.days_per_month)
    total_spend = sum(t.spend_usd or 0.0 for t in facts.task_types)
    ideal_monthly = cfg.money(facts.monthly_ideal_caching_usd if facts.monthly_ideal_caching_usd is not None
                              else facts.monthly_run_rate_usd)
    rows: list[dict[str, Any]] = []
    for t in facts.task_types:
        monthly_spend = cfg.money(_div(t.spend_usd, months))
        spend_share = _div(t.spend_usd, total_spend) if total_spend else None
        reasons = _not_migratable(t, facts, cfg)
        migrated_spend_share = (spend_share or 0.0) * cfg.hybrid_max_local_share if not reasons else 0.0
        savings = None
        if ideal_monthly is not None and spend_share is not None:
            savings = ideal_monthly * spend_share * cfg.hybrid_max_local_share
        examples = t.dataset_examples
        enough = None if examples is None else examples >= cfg.min_examples_per_task
        fit, fit_tier, fit_why = task_fit(t, cfg)
        rows.append({
            "id": t.id,
            "label": t.label,
            "requests": t.requests,
            "share": _round(t.share, 4),
            "input_tokens": t.input_tokens,
            "output_tokens": t.output_tokens,
            "spend": _round(cfg.money(t.spend_usd), 2),
            "monthly_spend": _round(monthly_spend, 2),
            "spend_share": _round(spend_share, 4),
            "cacheable_share": _round(t.cacheable_share, 4),
            "consistency": _round(t.consistency, 4),
            "repetitiveness": _round(t.repetitiveness, 4),
            "clean_requests": t.clean_examples,
            "dataset_examples": examples,
            "eval_examples": t.eval_examples,
            "clean_examples": examples,
            "enough_examples": enough,
            "examples_needed": None if examples is None else max(0, cfg.min_examples_per_task - examples),
            "regeneration_rate": _round(t.regeneration_rate, 4),
            "edit_rate": _round(t.edit_rate, 4),
            "negative_feedback_rate": _round(t.negative_feedback_rate, 4),
            "fit": fit,
            "fit_tier": fit_tier,
            "migratable": not reasons,
            "ready": not reasons and bool(enough),
            "not_migratable_because": reasons,
            "migrated_spend_share": _round(migrated_spend_share, 4),
            "projected_monthly_savings": _round(savings if not reasons else None, 2),
            "spend_rule": _spend_rule(monthly_spend, t, cfg),
            "rank": None,
            "rank_reason": None if reasons else f"fit: {fit} ({fit_why}, tier {fit_tier} of 3), then savings",
        })
    ranked = sorted((r for r in rows if r["migratable"]),
                    key=lambda r: (r["fit_tier"], -(r["projected_monthly_savings"] or 0.0), r["id"]))
    for i, r in enumerate(ranked, 1):
        r["rank"] = i
    rows.sort(key=lambda r: (r["rank"] is None, r["rank"] or 0, -(r["requests"] or 0)))
    return rows


def task_fit(t: TaskFacts, cfg: ReportConfig) -> tuple[str, int, str]:
    """The guides' task-type fit: (kind, tier 1-3, why). Classification and extraction gain most from
    fine-tuning, then fixed-format generation; open-ended text least."""
    mean_out = _div(t.output_tokens, t.requests)
    if t.output_format == "json":
        return "extraction / classification", 1, "structured JSON answers"
    if mean_out is not None and mean_out <= cfg.task_fit_short_output_tokens:
        return "classification", 1, f"short answers, mean {mean_out:,.0f} tokens"
    if t.repetitiveness is not None and t.repetitiveness >= cfg.task_fit_fixed_format_repetitiveness:
        return "fixed-format generation", 2, f"repetitiveness {t.repetitiveness:.2f}"
    return "open-ended generation", 3, "free-form text answers"


def _not_migratable(t: TaskFacts, facts: Facts, cfg: ReportConfig) -> list[str]:
    """What rules a task type out as a fine-tuning candidate. Too few clean examples does not: data
    accrues, so that is reported as `examples_needed` and the type stays in the plan, not `ready`."""
    reasons = []
    if t.id == "other":
        reasons.append("no recurring template")
    if t.repetitiveness is not None and t.repetitiveness < cfg.repetitive_min_score:
        reasons.append(f"repetitiveness {t.repetitiveness:.2f} < {cfg.repetitive_min_score:.2f}")
    if t.reasoning_share is not None and t.reasoning_share >= cfg.reasoning_share_stay_above:
        reasons.append(f"reasoning/long outputs in {t.reasoning_share:.0%} of requests")
    return reasons


def _spend_rule(monthly_spend: float | None, t: TaskFacts, cfg: ReportConfig) -> str | None:
    if monthly_spend is None:
        return None
    if monthly_spend < cfg.task_spend_stay_below:
        return "stay prompted"
    if monthly_spend > cfg.task_spend_finetune_above:
        return "fine-tuning on the table"
    return "evaluate both"


# --- the five signs ---------------------------------------------------------------------------


def five_signs(facts: Facts, cfg: ReportConfig, cost: dict[str, Any]) -> list[dict[str, Any]]:
    cur = cfg.currency
    after_caching = cost["monthly_with_ideal_caching"]
    basis = "with ideal caching"
    if after_caching is None:
        after_caching, basis = cost["monthly_run_rate"], "as logged"
    growth = facts.weekly_growth_rate
    growing = growth is not None and growth > cfg.sign1_min_weekly_growth
    sign1 = _sign(
        1, "The bill after caching is still too high", after_caching, cfg.sign1_min_monthly_cost_after_caching,
        None if after_caching is None else after_caching > cfg.sign1_min_monthly_cost_after_caching and growing,
        "logs",
        f"monthly API cost {basis}: {_money(after_caching, cur)} (threshold {_money(cfg.sign1_min_monthly_cost_after_caching, cur)}"
        f" and growing); as logged {_money(cost['monthly_run_rate'], cur)}; weekly growth {_pct(growth)}",
        "monthly spend projected from the window's per-request cost (usage x price table), with the "
        "cache simulation's ideal ordering applied",
        unit=cur,
        missing=facts.missing.get("monthly_ideal_caching_usd") or facts.missing.get("monthly_run_rate_usd"),
    )

    ideal = _ideal_share(facts)
    comp = facts.token_composition or {}
    input_parts = {k: v for k, v in comp.items() if k != "output"}
    user_share = _div((input_parts.get("user") or 0) + (input_parts.get("history") or 0), sum(input_parts.values()))
    sign2 = _sign(
        2, "Most tokens are user input, not system prompt", ideal, cfg.sign2_max_cacheable_share,
        None if ideal is None else ideal < cfg.sign2_max_cacheable_share, "logs",
        f"cacheable share of input tokens with ideal ordering {_pct(ideal)} (fires below "
        f"{_pct(cfg.sign2_max_cacheable_share)}); user turn + history are {_pct(user_share)} of input tokens",
        "prefix-cache simulation over the requests in time order under each provider's rules",
        unit="share", missing=facts.missing.get("simulated_share"),
    )

    pattern = pattern_share(facts, cfg)
    n_types = facts.task_type_count if facts.task_type_count is not None else (len(facts.task_types) or None)
    sign3 = _sign(
        3, "Tasks are well-defined and repetitive", pattern, cfg.sign3_min_pattern_share,
        None if pattern is None else pattern >= cfg.sign3_min_pattern_share, "logs",
        f"{_pct(pattern)} of requests belong to repetitive task types (repetitiveness >= "
        f"{cfg.repetitive_min_score:.2f}); {n_types if n_types is not None else 'unknown'} task types",
        "task-type clustering (system-prompt, tool-set and user-template fingerprints) and each type's "
        "repetitiveness score", unit="share", missing=facts.missing.get("task_types"),
    )

    sign4 = _sign4(facts, cfg)
    sign5 = _sign5(facts, cfg)
    return [sign1, sign2, sign3, sign4, sign5]


def _sign4(facts: Facts, cfg: ReportConfig) -> dict[str, Any]:
    top_provider = max((facts.provider_shares or {}).items(), key=lambda kv: kv[1], default=(None, None))
    evidence = (
        f"PII/secrets in {_pct(facts.sensitive_share)} of requests (threshold {_pct(cfg.sign4_min_sensitive_share)}); "
        f"429 rate limits on {_pct(facts.rate_limited_share)} of calls (threshold {_pct(cfg.sign4_min_rate_limited_share)}); "
        f"top provider {top_provider[0] or 'unknown'} carries {_pct(top_provider[1])}"
    )
    if cfg.on_premise_required is not None:
        return _sign(
            4, "You want to own the model and data pipeline", facts.sensitive_share, cfg.sign4_min_sensitive_share,
            cfg.on_premise_required, "config",
            f"report.on_premise_required = {str(cfg.on_premise_required).lower()}; " + evidence,
            "your configuration, with the log-derived risk figures beside it", unit="share",
        )
    measured = [v for v in (facts.sensitive_share, facts.rate_limited_share) if v is not None]
    triggered = None
    if measured:
        triggered = (facts.sensitive_share or 0) >= cfg.sign4_min_sensitive_share or (
            facts.rate_limited_share or 0
        ) >= cfg.sign4_min_rate_limited_share
    return _sign(
        4, "You want to own the model and data pipeline", facts.sensitive_share, cfg.sign4_min_sensitive_share,
        triggered, "inferred", evidence + "; set report.on_premise_required to state the requirement",
        "inferred from the share of requests carrying PII or secrets and from 429 rate limits",
        unit="share", missing=None if measured else facts.missing.get("sensitive_share"),
    )


def _sign5(facts: Facts, cfg: ReportConfig) -> dict[str, Any]:
    p90 = facts.latency_p90_ms
    need = cfg.latency_requirement_ms
    measured = f"measured p50 {_ms(facts.latency_p50_ms)}, p90 {_ms(p90)}"
    if need is None:
        # Without your requirement the sign cannot be judged: "not stated", like factor 6, never a
        # green "absent" beside a measured latency.
        sign = _sign(
            5, "Latency matters and caching is not enough", p90, cfg.sign5_local_latency_ms, None, "config",
            f"{measured}; no latency requirement stated (set report.latency_requirement_ms); "
            f"sub-{cfg.sign5_local_latency_ms:.0f} ms needs local inference",
            "end-to-end latency of non-batch calls; the requirement must come from you", unit="ms",
        )
        sign["state"] = "not stated"
        return sign
    return _sign(
        5, "Latency matters and caching is not enough", p90, need,
        need < cfg.sign5_local_latency_ms and (p90 is None or p90 > need), "config",
        f"{measured}; required p90 {need:.0f} ms (local inference needed below {cfg.sign5_local_latency_ms:.0f} ms)",
        "end-to-end latency of non-batch calls against your stated requirement", unit="ms",
    )


def _sign(
    sign_id: int, name: str, value: float | None, threshold: float | None, triggered: bool | None,
    measured_from: str, evidence: str, how: str, unit: str, missing: str | None = None,
) -> dict[str, Any]:
    if value is None and triggered is None:
        evidence = f"not measured: {missing or 'no upstream figure'}"
    state = "present" if triggered else "absent" if triggered is not None else "not measured"
    return {
        "id": sign_id,
        "name": name,
        "value": _round(value, 4),
        "threshold": threshold,
        "unit": unit,
        "triggered": bool(triggered) if triggered is not None else False,
        "measured": triggered is not None,
        "state": state,
        "evidence": evidence,
        "how": how,
        "measured_from": measured_from,
    }


def pattern_share(facts: Facts, cfg: ReportConfig) -> float | None:
    """Share of requests in task types repetitive enough to be 'the same pattern'."""
    scored = [t for t in facts.task_types if t.repetitiveness is not None and t.share is not None]
    if not scored:
        return None
    return sum(t.share for t in scored if t.repetitiveness >= cfg.repetitive_min_score)  # type: ignore[misc]


def _ideal_share(facts: Facts) -> float | None:
    shares = facts.simulated_share or {}
    if facts.ideal_rule_set and facts.ideal_rule_set in shares:
        return shares[facts.ideal_rule_set]
    return max(shares.values()) if shares else None


# --- the eight-factor framework ---------------------------------------------------------------


def decision_framework(facts: Facts, cfg: ReportConfig, cost: dict[str, Any]) -> dict[str, Any]:
    cur = cfg.currency
    factors = []

    after = cost["monthly_with_ideal_caching"] if cost["monthly_with_ideal_caching"] is not None else cost["monthly_run_rate"]
    growing = facts.weekly_growth_rate is not None and facts.weekly_growth_rate > cfg.sign1_min_weekly_growth
    factors.append(_factor(
        1, "Monthly API cost after caching", after, _money(after, cur),
        _side(after is not None and after < cfg.factor_cost_stay_below,
              after is not None and after > cfg.factor_cost_switch_above and growing, after is None),
        "logs", f"< {_money(cfg.factor_cost_stay_below, cur)}", f"> {_money(cfg.factor_cost_switch_above, cur)} and growing",
        facts.missing.get("monthly_run_rate_usd"),
    ))
    ideal = _ideal_share(facts)
    factors.append(_factor(
        2, "Share of tokens that are cacheable", ideal, _pct(ideal),
        _side(ideal is not None and ideal > cfg.factor_cacheable_stay_above,
              ideal is not None and ideal < cfg.factor_cacheable_switch_below, ideal is None),
        "logs", f"> {_pct(cfg.factor_cacheable_stay_above)}", f"< {_pct(cfg.factor_cacheable_switch_below)}",
        facts.missing.get("simulated_share"),
    ))
    pattern = pattern_share(facts, cfg)
    n_types = facts.task_type_count if facts.task_type_count is not None else len(facts.task_types)
    factors.append(_factor(
        3, "Task variety", pattern,
        f"{_pct(pattern)} of requests in repetitive types; {n_types} types" if pattern is not None else "—",
        _side(pattern is not None and pattern < cfg.factor_variety_stay_below,
              pattern is not None and pattern >= cfg.sign3_min_pattern_share, pattern is None),
        "logs", f"high, changing often (< {_pct(cfg.factor_variety_stay_below)} repetitive)",
        f"low, well-defined (>= {_pct(cfg.sign3_min_pattern_share)} repetitive)", facts.missing.get("task_types"),
    ))
    factors.append(_examples_factor(facts, cfg))
    if cfg.needs_frontier_reasoning is not None:
        factors.append(_factor(
            5, "Need for frontier reasoning", cfg.needs_frontier_reasoning,
            "yes (config)" if cfg.needs_frontier_reasoning else "no (config)",
            CACHING if cfg.needs_frontier_reasoning else FINE_TUNING, "config",
            "yes, genuinely complex", "no, specific and learnable", None,
        ))
    else:
        rs = facts.reasoning_share
        factors.append(_factor(
            5, "Need for frontier reasoning", rs,
            "—" if rs is None else f"{_pct(rs)} of requests use reasoning tokens or outputs > {cfg.long_output_tokens:,} tokens",
            _side(rs is not None and rs >= cfg.reasoning_share_stay_above, rs is not None and rs < cfg.reasoning_share_stay_above,
                  rs is None),
            "inferred", f">= {_pct(cfg.reasoning_share_stay_above)} reasoning/long outputs",
            f"< {_pct(cfg.reasoning_share_stay_above)}", facts.missing.get("reasoning_share"),
        ))
    need = cfg.latency_requirement_ms
    factors.append(_factor(
        6, "Latency requirement", need,
        f"required {need:.0f} ms (measured p90 {_ms(facts.latency_p90_ms)})" if need is not None
        else f"not stated (measured p90 {_ms(facts.latency_p90_ms)})",
        UNKNOWN if need is None else _side(need > cfg.factor_latency_stay_above_ms, need < cfg.sign5_local_latency_ms, False),
        "config", f"> {cfg.factor_latency_stay_above_ms:.0f} ms acceptable", f"< {cfg.sign5_local_latency_ms:.0f} ms needed",
        "set report.latency_requirement_ms" if need is None else None,
    ))
    if cfg.on_premise_required is not None:
        factors.append(_factor(
            7, "Data sensitivity", cfg.on_premise_required,
            "on-premise required (config)" if cfg.on_premise_required else "cloud acceptable (config)",
            FINE_TUNING if cfg.on_premise_required else CACHING, "config",
            "cloud processing acceptable", "on-premise / private required", None,
        ))
    else:
        s = facts.sensitive_share
        factors.append(_factor(
            7, "Data sensitivity", s, "—" if s is None else f"PII/secrets in {_pct(s)} of requests",
            _side(s is not None and s < cfg.sign4_min_sensitive_share, s is not None and s >= cfg.sign4_min_sensitive_share,
                  s is None),
            "inferred", f"< {_pct(cfg.sign4_min_sensitive_share)} sensitive", f">= {_pct(cfg.sign4_min_sensitive_share)} sensitive",
            facts.missing.get("sensitive_share"),
        ))
    g6 = facts.projected_6_month_factor
    factors.append(_factor(
        8, "Usage trajectory", g6, "—" if g6 is None else f"x{g6:.2f} in 6 months (weekly {_pct(facts.weekly_growth_rate)})",
        _side(g6 is not None and g6 < cfg.factor_growth_stay_below_factor,
              g6 is not None and g6 >= cfg.factor_growth_switch_factor, g6 is None),
        "logs", f"stable or slow (< x{cfg.factor_growth_stay_below_factor:g} in 6 months)",
        f"rapid (>= x{cfg.factor_growth_switch_factor:g} in 6 months)", facts.missing.get("projected_6_month_factor"),
    ))
    switch = sum(f["side"] == FINE_TUNING for f in factors)
    stay = sum(f["side"] == CACHING for f in factors)
    unknown = sum(f["side"] == UNKNOWN for f in factors)
    return {
        "factors": factors,
        "switch_count": switch,
        "stay_count": stay,
        "unknown_count": unknown,
        "switch_min": cfg.framework_switch_min,
        # Evidence for the decision, not a verdict of its own: the decision also weighs payback and readiness.
        "meets_switch_rule": switch >= cfg.framework_switch_min,
    }


def _examples_factor(facts: Facts, cfg: ReportConfig) -> dict[str, Any]:
    """Factor 4 judged per task type on the dataset's own examples, never pooled across types: the
    switch column needs ONE candidate type with more than the threshold."""
    measured = [t for t in facts.task_types if t.dataset_examples is not None]
    if not measured:
        reason = facts.missing.get("dataset_train") or facts.missing.get("task_types") or "no per-task dataset counts"
        return _factor(4, "Training data available", None, "—", UNKNOWN, "logs",
                       f"< {cfg.factor_examples_stay_below:,} examples per task type",
                       f"> {cfg.factor_examples_switch_above:,} examples in a task type", reason)
    pool = [t for t in measured if not _not_migratable(t, facts, cfg)] or measured
    best = max(pool, key=lambda t: (t.dataset_examples or 0, t.id))
    top = best.dataset_examples or 0
    above = sum((t.dataset_examples or 0) > cfg.factor_examples_switch_above for t in pool)
    kind = "candidate task type" if pool is not measured else "task type"
    display = (f"largest {kind}: {best.id} with {top:,} dataset examples; {above} of {len(pool)} "
               f"above {cfg.factor_examples_switch_above:,}")
    return _factor(
        4, "Training data available", top, display,
        _side(top < cfg.factor_examples_stay_below, top > cfg.factor_examples_switch_above, False),
        "logs", f"< {cfg.factor_examples_stay_below:,} examples per task type",
        f"> {cfg.factor_examples_switch_above:,} examples in a task type", None,
    )


def _side(stay: bool, switch: bool, missing: bool) -> str:
    if missing:
        return UNKNOWN
    return FINE_TUNING if switch else CACHING if stay else UNKNOWN


def _factor(
    factor_id: int, name: str, value: Any, display: str, side: str, measured_from: str,
    stay_if: str, switch_if: str, missing: str | None,
) -> dict[str, Any]:
    if side == FINE_TUNING:
        why = f"{display}: meets the switch column ({switch_if})"
    elif side == CACHING:
        why = f"{display}: meets the stay column ({stay_if})"
    elif missing:
        why = f"not stated: {missing}" if measured_from == "config" else f"not measured: {missing}"
    else:
        why = f"{display}: between the columns (stay {stay_if}; switch {switch_if})"
    return {
        "id": factor_id,
        "name": name,
        "value": _round(value, 4) if isinstance(value, float) else value,
        "display": display,
        "side": side,
        "why": why,
        "measured_from": measured_from,
        "stay_if": stay_if,
        "switch_if": switch_if,
    }


# --- other published rules, prefix breakers, data quality -------------------------------------


def published_rules(facts: Facts, cfg: ReportConfig, tasks: list[dict[str, Any]]) -> dict[str, Any]:
    per_day = _div(facts.requests_total, facts.window_days)
    band = None
    if per_day is not None:
        band = next(rule for upper, rule in cfg.volume_bands if per_day < upper)
    return {
        "volume": {
            "requests_per_day": _round(per_day, 1),
            "rule": band,
            "bands": [{"below": None if math.isinf(u) else u, "rule": r} for u, r in cfg.volume_bands],
        },
        "spend_per_task": {
            "stay_below": cfg.task_spend_stay_below,
            "fine_tune_above": cfg.task_spend_finetune_above,
            "currency": cfg.currency,
            "tasks_on_the_table": [t["id"] for t in tasks if t["spend_rule"] == "fine-tuning on the table"],
        },
    }


def prefix_breakers(facts: Facts, cfg: ReportConfig) -> list[dict[str, Any]]:
    """The cache audit's prefix breakers in one fixed shape, money converted, largest saving first."""
    months = _div(facts.window_days, cfg.days_per_month)
    rows = []
    for b in facts.prefix_breakers:
        saving_usd = _first(b, "saving_usd", "tokens_saving_usd", "saving_window_usd")
        monthly_usd = _first(b, "monthly_saving_usd")
        if monthly_usd is None and saving_usd is not None and months:
            monthly_usd = saving_usd / months
        rows.append({
            "kind": _first(b, "kind", "span_kind", "breaker"),
            "task_type": _first(b, "task_type"),
            "task_label": _first(b, "task_label", "label"),
            "requests": _first(b, "requests", "requests_hit"),
            "position_tokens": _first(b, "position_tokens", "divergence_token", "offset_tokens"),
            "stable_tokens_after": _first(b, "stable_tokens_after", "tokens_after"),
            "example": _first(b, "example", "sample"),
            "fix": _first(b, "fix"),
            "saving": _round(cfg.money(saving_usd), 2),
            "monthly_saving": _round(cfg.money(monthly_usd), 2),
        })
    rows.sort(key=lambda r: -(r["monthly_saving"] or 0.0))
    return rows[: cfg.max_prefix_breakers]


def _first(d: dict[str, Any], *keys: str) -> Any:
    return next((d[k] for k in keys if d.get(k) is not None), None)


def data_quality(facts: Facts, cfg: ReportConfig) -> dict[str, Any]:
    def crit(cid: str, name: str, value: float | None, target: str, ok: bool | None, how: str, miss: str | None) -> dict:
        return {
            "id": cid, "criterion": name, "value": _round(value, 4), "target": target,
            "passed": None if value is None else ok, "how": how,
            "reason": None if value is not None else f"not measured: {miss or 'no upstream figure'}",
        }

    v = facts
    criteria = [
        crit("label_accuracy", "Label accuracy (proxy)", v.label_accuracy_proxy, f"> {_pct(cfg.dq_min_label_accuracy)}",
             v.label_accuracy_proxy is not None and v.label_accuracy_proxy > cfg.dq_min_label_accuracy,
             "share of answered requests users did not regenerate, edit or rate negatively (the task audit's signals)",
             v.missing.get("label_accuracy_proxy")),
        crit("distribution_match", "Distribution match (train vs recent traffic)", v.distribution_distance,
             f"<= {cfg.dq_max_distribution_distance:.2f} total-variation distance",
             v.distribution_distance is not None and v.distribution_distance <= cfg.dq_max_distribution_distance,
             f"task-type mix of train vs the last {cfg.recent_days} days of traffic", v.missing.get("distribution_distance")),
        crit("edge_case_coverage", "Edge-case coverage", v.edge_case_share,
             f"{_pct(cfg.dq_edge_case_min)}–{_pct(cfg.dq_edge_case_max)} of examples",
             v.edge_case_share is not None and cfg.dq_edge_case_min <= v.edge_case_share <= cfg.dq_edge_case_max,
             f"train examples in rare task types (< {_pct(cfg.dq_rare_task_share)} of traffic) or in the top 5% "
             "of their type's length", v.missing.get("edge_case_share")),
        crit("consistent_format", "Consistent format", v.format_consistency, f">= {_pct(cfg.dq_min_format_consistency)}",
             v.format_consistency is not None and v.format_consistency >= cfg.dq_min_format_consistency,
             "share of answers in their task type's majority output format (JSON key set or text), weighted by train examples", v.missing.get("format_consistency")),
        crit("no_leakage", "No leakage", None if v.leakage_pairs is None else float(v.leakage_pairs),
             f"<= {cfg.dq_max_leakage_pairs} eval/train near-duplicate pairs",
             v.leakage_pairs is not None and v.leakage_pairs <= cfg.dq_max_leakage_pairs,
             "eval examples with Jaccard >= threshold to any train example (the dataset's own check)",
             v.missing.get("leakage_pairs")),
        crit("diversity", "Diversity (duplicates)", v.duplicate_share, f"<= {_pct(cfg.dq_max_duplicate_share)}",
             v.duplicate_share is not None and v.duplicate_share <= cfg.dq_max_duplicate_share,
             "exact + near-duplicate share among dataset candidates before dedup", v.missing.get("duplicate_share")),
    ]
    measured = [c for c in criteria if c["passed"] is not None]
    return {
        "criteria": criteria,
        "passed": sum(bool(c["passed"]) for c in measured),
        "failed": sum(not c["passed"] for c in measured),
        "not_measured": len(criteria) - len(measured),
    }


# --- the decision ------------------------------------------------------------------------------


def decide(report: dict[str, Any], cfg: ReportConfig) -> dict[str, Any]:
    """THE decision: one value of `DECISIONS`, the chain of checks behind it and the task types for
    each action. Every output renders this object; nothing else states a verdict.

      no factor measured                                         -> insufficient_data
      count >= rule, pays back (flat), candidate types ready     -> migrate (ready types carry
                                                                    >= migrate_min_ready_spend_share
                                                                    of spend) or pilot_fine_tune
      count >= rule, pays back (flat or along the growth trend)  -> prepare_dataset
      otherwise, caching can be improved                         -> fix_caching_first
      otherwise                                                  -> stay_with_caching
    """
    fw, cost, cur = report["framework"], report["cost"], cfg.currency
    tasks = report["task_types"]
    present = [s for s in report["signs"] if s["triggered"]]
    candidates = [t for t in tasks if t["rank"] is not None]
    ready = [t for t in candidates if t["ready"]]
    building = [t for t in candidates if not t["ready"]]
    breakers = report["cache"]["prefix_breakers"]
    measured_factors = len(fw["factors"]) - fw["unknown_count"]

    count_ok = fw["switch_count"] >= cfg.framework_switch_min
    saving = cost["monthly_savings_if_migrated"]
    # Unrounded (the display rounds to 0.1 month): 24.02 months is beyond a 24-month horizon.
    flat = cost["one_time_fine_tune_cost"] / saving if saving and saving > 0 else None
    trend = cost["break_even_month_with_growth"]
    pays_back = flat is not None and flat <= cfg.break_even_horizon_months
    pays_back_on_trend = trend is not None
    spend_total = sum(t["spend_share"] or 0.0 for t in tasks) or None
    ready_share = _div(sum(t["spend_share"] or 0.0 for t in ready), spend_total) if ready else 0.0
    shares = report["cache"]["simulated_share"] or {}
    gain = None
    if "as_logged" in shares and shares:
        gain = _ideal_share_of(report) - shares["as_logged"]
    breaker_saving = sum(b["monthly_saving"] or 0.0 for b in breakers)
    fixable = bool(breakers) or (gain is not None and gain >= cfg.fix_caching_min_gain)

    chain = [
        _step("framework", count_ok,
              f"{fw['switch_count']} of 8 factors in the switch column (rule: {cfg.framework_switch_min} or more; "
              f"{fw['stay_count']} stay, {fw['unknown_count']} undecided)"),
        _step("payback", None if cost["monthly_savings_if_migrated"] is None else pays_back, _payback_text(cost, cfg)),
        _step("ready", bool(ready) if candidates else False, _ready_text(candidates, ready, cfg)),
        _step("caching", fixable, _caching_text(shares, gain, breakers, breaker_saving, report, cfg)),
    ]
    if measured_factors == 0:
        value, decided_by = "insufficient_data", None
    elif count_ok and pays_back and ready:
        value = "migrate" if ready_share is not None and ready_share >= cfg.migrate_min_ready_spend_share \
            else "pilot_fine_tune"
        decided_by = "ready"
        chain.append(_step("ready_share", value == "migrate",
                           f"ready task types carry {_pct(ready_share)} of spend (migrate at "
                           f">= {_pct(cfg.migrate_min_ready_spend_share)}, else pilot on the first)"))
    elif count_ok and (pays_back or pays_back_on_trend) and candidates:
        value, decided_by = "prepare_dataset", ("ready" if pays_back else "payback")
    elif fixable:
        value, decided_by = "fix_caching_first", ("payback" if count_ok else "framework")
    else:
        value, decided_by = "stay_with_caching", ("payback" if count_ok else "framework")

    fine_tune = [t["id"] for t in ready] if value == "migrate" else [t["id"] for t in ready[:1]] \
        if value == "pilot_fine_tune" else []
    build = [t["id"] for t in building] if value in ("migrate", "pilot_fine_tune", "prepare_dataset") else []
    next_up = [t["id"] for t in ready[1:]] if value == "pilot_fine_tune" else []
    actions = {
        "fine_tune": fine_tune,
        "fine_tune_next": next_up,
        "build_dataset": build,
        "fix_caching": sorted({str(b["task_type"]) for b in breakers if b.get("task_type")}),
        "keep_on_api": [t["id"] for t in tasks if t["rank"] is None],
    }
    by_id = {t["id"]: t for t in tasks}
    headline = _headline(value, report, cfg, by_id, actions, present, breakers, gain, ready_share)
    caveats = _caveats(value, report, cfg)
    evidence = [f"{f['name']}: {f['why']}" for f in fw["factors"] if f["side"] == FINE_TUNING]
    evidence += [f"Sign {s['id']} ({s['name']}): {s['evidence']}" for s in present]
    return {
        "decision": value,
        "title": DECISIONS[value],
        "headline": headline,
        "decided_by": decided_by,
        "reasons": chain,
        "actions": actions,
        "caveats": caveats,
        "switch_count": fw["switch_count"],
        "switch_min": fw["switch_min"],
        "signs_present": len(present),
        "currency": cur,
        "migrate_first": fine_tune,
        "fix_prefix_breakers": [b.get("kind") or b.get("id") for b in breakers[:3]],
        "evidence": evidence,
    }


def _step(check: str, passed: bool | None, text: str) -> dict[str, Any]:
    return {"check": check, "passed": passed, "text": text}


def _ideal_share_of(report: dict[str, Any]) -> float:
    shares = report["cache"]["simulated_share"] or {}
    name = report["cache"]["ideal_rule_set"]
    return shares[name] if name in shares else max(shares.values())


def _payback_text(cost: dict[str, Any], cfg: ReportConfig) -> str:
    cur = cfg.currency
    saving = cost["monthly_savings_if_migrated"]
    one_time = _money(cost["one_time_fine_tune_cost"], cur)
    if saving is None:
        return "payback not measured (no monthly cost figure)"
    if cost["break_even_months"] is not None:
        within = "within" if cost["break_even_months"] <= cfg.break_even_horizon_months else "beyond"
        return (f"saves {_money(saving, cur)}/month against {one_time} one-time: break-even in "
                f"{cost['break_even_months']:.1f} months ({within} the {cfg.break_even_horizon_months}-month horizon)")
    if cost["break_even_month_with_growth"] is not None:
        return (f"the hybrid costs {_money(-saving, cur)}/month MORE today; along the measured growth trend "
                f"it repays {one_time} one-time by month {cost['break_even_month_with_growth']}")
    return (f"a fine-tuned hybrid would cost {_money(-saving, cur)}/month more than cached API calls "
            f"({_money(cost['local_infra_monthly_cost'], cur)}/month infrastructure) and never repays {one_time} "
            f"one-time within {cfg.break_even_horizon_months} months")


def _ready_text(candidates: list[dict[str, Any]], ready: list[dict[str, Any]], cfg: ReportConfig) -> str:
    if not candidates:
        return "no task type is a candidate (none is repetitive and specific enough)"
    if ready:
        names = ", ".join(f"{t['id']} ({t['dataset_examples']:,} examples)" for t in ready)
        return f"{len(ready)} of {len(candidates)} candidate task types have >= {cfg.min_examples_per_task:,} dataset examples: {names}"
    measured = [t for t in candidates if t["dataset_examples"] is not None]
    if not measured:
        return "dataset examples per task type not measured (run `logaudit dataset`)"
    best = max(measured, key=lambda t: t["dataset_examples"])
    return (f"no candidate task type has {cfg.min_examples_per_task:,} dataset examples yet (largest: "
            f"{best['id']} with {best['dataset_examples']:,})")


def _caching_text(shares: dict[str, float], gain: float | None, breakers: list[dict[str, Any]], saving: float,
                  report: dict[str, Any], cfg: ReportConfig) -> str:
    parts = []
    if gain is not None:
        parts.append(f"ideal ordering caches {_pct(_ideal_share_of(report))} of input tokens vs "
                     f"{_pct(shares['as_logged'])} as logged ({gain * 100:+.1f} points; fixable at "
                     f">= {cfg.fix_caching_min_gain * 100:.0f})")
    if breakers:
        parts.append(f"{len(breakers)} prefix breaker(s) worth {_money(saving, cfg.currency)}/month: "
                     + "; ".join(_breaker_text(b) for b in breakers[:3]))
    return "; ".join(parts) or "cache simulation not measured"


def _headline(value: str, report: dict[str, Any], cfg: ReportConfig, by_id: dict[str, dict[str, Any]],
              actions: dict[str, list[str]], present: list[dict[str, Any]], breakers: list[dict[str, Any]],
              gain: float | None, ready_share: float | None) -> str:
    fw, cost, cur = report["framework"], report["cost"], cfg.currency
    count = f"{fw['switch_count']} of 8 factors favour fine-tuning and {len(present)} of 5 signs are present"
    run_rate = f"{_money(cost['monthly_run_rate'], cur)}/month as logged"
    fix = "; ".join(_breaker_text(b) for b in breakers[:3])

    def names(ids: list[str]) -> str:
        if len(ids) > 3:  # the per-task detail is in the actions and the task table
            return f"{len(ids)} task types ({', '.join(ids)})"
        return "; ".join(_candidate_text(by_id[i], cfg) for i in ids)

    if value == "migrate":
        return (f"Migrate: fine-tune {names(actions['fine_tune'])} and keep the rest on cached API calls. {count}; "
                f"break-even in {cost['break_even_months']:.1f} months at {run_rate}.")
    if value == "pilot_fine_tune":
        return (f"Pilot a fine-tune on {names(actions['fine_tune'])}, then extend. {count}; break-even in "
                f"{cost['break_even_months']:.1f} months, but the ready task types carry only {_pct(ready_share)} of spend.")
    if value == "prepare_dataset":
        why = ("no candidate task type has enough dataset examples yet" if cost["break_even_months"] is not None
               and cost["break_even_months"] <= cfg.break_even_horizon_months
               else "the migration repays its cost only if the measured growth continues")
        return (f"Not yet: keep caching and build the dataset for {names(actions['build_dataset'])}. {count}, "
                f"but {why}.")
    if value == "fix_caching_first":
        target = f"fix {fix}" if fix else "move dynamic content after the stable prefix"
        more = f" (+{gain * 100:.1f} points of input tokens cacheable)" if gain is not None and gain > 0 else ""
        return (f"Stay with caching and fix it first: {target}{more}. Fine-tuning does not pay here: {count}; "
                f"{run_rate}.")
    if value == "stay_with_caching":
        return f"Stay with caching: {count}; {run_rate}; caching is already close to its best."
    return "Not enough was measured to decide: run the audit and dataset stages first."


def _caveats(value: str, report: dict[str, Any], cfg: ReportConfig) -> list[str]:
    fw, cost, cur = report["framework"], report["cost"], cfg.currency
    out = []
    if fw["switch_count"] >= cfg.framework_switch_min and value in ("fix_caching_first", "stay_with_caching"):
        out.append(
            f"The framework count alone ({fw['switch_count']} of 8) meets the {cfg.framework_switch_min}-or-more rule, but "
            f"a fine-tuned hybrid costs {_money(cost['local_infra_monthly_cost'], cur)}/month of infrastructure plus "
            f"{_money(cost['one_time_fine_tune_cost'], cur)} once, more than the API spend it would replace; "
            "revisit when volume grows (see the break-even row)."
        )
    stated_by = {"Latency requirement": "report.latency_requirement_ms",
                 "Data sensitivity": "report.on_premise_required",
                 "Need for frontier reasoning": "report.needs_frontier_reasoning"}
    for f in fw["factors"]:
        if f["side"] != UNKNOWN:
            continue
        if f["name"] in stated_by and f["measured_from"] == "config":
            out.append(f"{f['name']}: not stated; set {stated_by[f['name']]} to decide it.")
        else:
            out.append(f"{f['name']} undecided: {f['why']}.")
    return out


def _candidate_text(t: dict[str, Any], cfg: ReportConfig) -> str:
    if t["ready"]:
        status = f"{t['dataset_examples']:,} dataset examples, ready"
    elif t["dataset_examples"] is not None:
        status = f"{t['dataset_examples']:,} of {cfg.min_examples_per_task:,} dataset examples so far"
    else:
        status = "dataset examples not measured"
    label = t["label"] if len(t["label"]) <= 48 else t["label"][:47].rstrip() + "…"
    return f"{label} ({t['id']}, {status})"


def _breaker_text(b: dict[str, Any]) -> str:
    where = (b.get("task_label") or b.get("task_type") or "prompts").rstrip(". ")
    if len(where) > 60:
        where = where[:59].rstrip() + "…"
    what = b.get("kind") or "dynamic content"
    return f"{what} in “{where}”"


# --- helpers ----------------------------------------------------------------------------------


def _daily_series(facts: Facts, cfg: ReportConfig) -> list[dict[str, Any]]:
    return [{**d, "spend": _round(cfg.money(d.get("spend_usd")), 4)} for d in facts.daily]


def _thresholds(cfg: ReportConfig) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.name == "volume_bands":
            value = [[None if math.isinf(u) else u, r] for u, r in value]
        out[f.name] = value
    return out


def _div(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


def _money(value: float | None, currency: str) -> str:
    if value is None:
        return "—"
    return f"{value:,.2f} {currency}" if abs(value) < 100 else f"{value:,.0f} {currency}"
