-- name: cache_rollup
-- params: -
-- description: Every cache metric defined once, rolled up with GROUPING SETS over the whole window,
--   per model, per task type and per day (`level` says which). The cache_by_* and cache_overall
--   queries select one level each. Shares: simulated reads / input of simulated requests; the
--   provider-reported cached share over rows whose usage has cache fields; the gap between them on
--   rows that have both; spend actual / without caching / per scenario; calibrated token segments.
SELECT
    CASE WHEN GROUPING(model) = 0 THEN 'model'
         WHEN GROUPING(task_type) = 0 THEN 'task_type'
         WHEN GROUPING(day) = 0 THEN 'day'
         ELSE 'overall' END AS level,
    model, task_type, day,
    min(provider) AS provider, mode(model ORDER BY model) AS top_model, min(rules) AS rules,
    count(*) AS requests,
    count(*) FILTER (WHERE simulated) AS simulated_requests,
    count(*) FILTER (WHERE has_cache_fields) AS requests_with_cache_fields,
    sum(input_tokens) AS input_tokens,
    sum(input_tokens) FILTER (WHERE simulated) AS simulated_input_tokens,
    sum(as_logged_read) AS as_logged_read,
    sum(as_logged_write_5m + as_logged_write_1h) AS as_logged_write,
    sum(ideal_bp_read) AS ideal_bp_read,
    sum(ideal_read) AS ideal_read,
    sum(reported_read) FILTER (WHERE has_cache_fields) AS reported_read,
    sum(reported_write) FILTER (WHERE has_cache_fields) AS reported_write,
    sum(as_logged_read) / nullif(sum(input_tokens) FILTER (WHERE simulated), 0) AS as_logged_share,
    sum(ideal_bp_read) / nullif(sum(input_tokens) FILTER (WHERE simulated), 0) AS ideal_bp_share,
    sum(ideal_read) / nullif(sum(input_tokens) FILTER (WHERE simulated), 0) AS ideal_share,
    sum(reported_read) FILTER (WHERE has_cache_fields)
        / nullif(sum(input_tokens) FILTER (WHERE has_cache_fields), 0) AS reported_cached_share,
    (sum(as_logged_read) FILTER (WHERE simulated AND has_cache_fields)
        - sum(reported_read) FILTER (WHERE simulated AND has_cache_fields))
        / nullif(sum(input_tokens) FILTER (WHERE simulated AND has_cache_fields), 0) AS gap_simulated_minus_reported,
    coalesce(CAST(sum(CAST(cost_usd AS DECIMAL(38, 18))) AS DOUBLE), 0) AS cost_usd,
    coalesce(CAST(sum(CAST(cost_uncached_usd AS DECIMAL(38, 18))) AS DOUBLE), 0) AS cost_uncached_usd,
    coalesce(CAST(sum(CAST(cost_sim_as_logged_usd AS DECIMAL(38, 18))) AS DOUBLE), 0) AS cost_sim_as_logged_usd,
    coalesce(CAST(sum(CAST(cost_sim_ideal_bp_usd AS DECIMAL(38, 18))) AS DOUBLE), 0) AS cost_sim_ideal_bp_usd,
    coalesce(CAST(sum(CAST(cost_sim_ideal_usd AS DECIMAL(38, 18))) AS DOUBLE), 0) AS cost_sim_ideal_usd,
    sum(tok_tools) AS tok_tools, sum(tok_system) AS tok_system, sum(tok_history) AS tok_history,
    sum(tok_new_turn) AS tok_new_turn,
    sum(tok_tools + tok_system + tok_history + tok_new_turn) AS tok_total,
    count(*) FILTER (WHERE simulated AND prompt_incomplete) AS prompt_incomplete_requests,
    count(*) FILTER (WHERE simulated AND bp_source = 'inferred') AS breakpoints_inferred_requests
FROM cache_requests
GROUP BY GROUPING SETS ((), (model), (task_type), (day))
