"""The audit's handoffs: the tables and the `summary.json` figures the dataset and report stages read.

One name per figure: readers use exactly these names (pipeline/report/inputs.py, weekly.py,
pipeline/dataset/stage.py), and tests/test_handoffs.py fails when what the audit writes drifts from
what is declared here. The task-type tables (`request_labels`, `task_types`, `task_type_versions`,
`signal_rates`) are declared with their types in `schemas/labels.py`.

    WORKDIR/audit/<table>.parquet     AUDIT_TABLES (columns, in order)
    WORKDIR/audit/summary.json        {"sections": {section: {...}}, "skipped": [...], "timings_s": {...}}
                                      SUMMARY_FIELDS (the dotted keys readers use, per section)

The cacheable share of the input is `ideal_share` (with ideal ordering and breakpoints),
`ideal_bp_share` (ideal breakpoints, prompts as logged) and `as_logged_share` (the breakpoints the
logs show), each over the simulated input tokens; `reported_cached_share` is what the provider
reported as cache reads.
"""

from __future__ import annotations

_CACHE_ROLLUP = (
    "requests", "simulated_requests", "requests_with_cache_fields", "input_tokens", "simulated_input_tokens",
    "as_logged_read", "as_logged_write", "ideal_bp_read", "ideal_read", "reported_read", "reported_write",
    "as_logged_share", "ideal_bp_share", "ideal_share", "reported_cached_share", "gap_simulated_minus_reported",
    "cost_usd", "cost_uncached_usd", "cost_sim_as_logged_usd", "cost_sim_ideal_bp_usd", "cost_sim_ideal_usd",
)

AUDIT_TABLES: dict[str, tuple[str, ...]] = {
    # audit/cost.py: spend per request (everything else joins it) and per period.
    "request_costs": (
        "request_id", "ts", "date", "model", "model_resolved", "provider", "is_batch", "price_model_key",
        "price_effective_from", "priced", "usage_missing", "in_uncached", "in_cache_read", "in_cache_write_5m",
        "in_cache_write_1h", "in_cache_write_unspecified", "input_tokens", "out_total", "out_reasoning",
        "cost_input_usd", "cost_cached_input_usd", "cost_cache_write_usd", "cost_output_usd", "batch_discount_usd",
        "cost_usd", "cost_uncached_usd", "cost_reported_usd",
    ),
    "cost_by_period": (
        "grain", "period_start", "requests", "priced_requests", "input_tokens", "cache_read_tokens", "output_tokens",
        "cost_usd", "cost_uncached_usd",
    ),
    # audit/cache.py: the cacheable-prefix simulation rolled up by day and by task type.
    "cache_by_day": ("day", *_CACHE_ROLLUP),
    "cache_by_task_type": ("task_type", "model", "rules", *_CACHE_ROLLUP, "spend_usd"),
}

# The columns of per-request tables a reader needs (wider tables may carry more).
AUDIT_TABLE_READ_COLUMNS: dict[str, tuple[str, ...]] = {
    "cache_requests": ("request_id", "simulated", "input_tokens", "ideal_read", "encoding", "new_turn_key",
                       "new_turn_tokens"),
}

SUMMARY_SECTIONS = ("cost", "tasks", "cache", "traffic")

SUMMARY_FIELDS: dict[str, tuple[str, ...]] = {
    "cost": ("total_usd", "monthly_run_rate_usd", "monthly_run_rate_without_caching_usd", "headline"),
    "tasks": ("headline",),
    "cache": (
        "overall.as_logged_share", "overall.ideal_bp_share", "overall.ideal_share", "overall.reported_cached_share",
        "projections_usd_per_month.api_ideal_caching", "projections_usd_per_month.api_without_caching",
        "tokens.segments", "cacheable_tokens.reported_cache_read", "calibration", "prefix_breakers",
        "task_labels", "headline",
    ),
    "traffic": (
        "latency.p50_ms", "latency.p90_ms", "latency.p99_ms", "growth.weekly_growth_rate",
        "growth.projected_6_month_factor", "errors.rate_limited_share", "headline",
    ),
}
