-- name: cache_by_task_type
-- params: -
-- description: Share of input tokens cacheable per scenario (simulated reads / input of simulated
--   requests), the provider-reported cached share (rows whose usage has cache fields), the gap
--   between them on rows that have both, and spend actual / without caching / per scenario.
SELECT
    task_type, mode(model) AS model, any_value(rules) AS rules,
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
    coalesce(sum(cost_usd), 0) AS cost_usd,
    coalesce(sum(cost_uncached_usd), 0) AS cost_uncached_usd,
    coalesce(sum(cost_sim_as_logged_usd), 0) AS cost_sim_as_logged_usd,
    coalesce(sum(cost_sim_ideal_bp_usd), 0) AS cost_sim_ideal_bp_usd,
    coalesce(sum(cost_sim_ideal_usd), 0) AS cost_sim_ideal_usd,
    coalesce(sum(cost_usd), 0) AS spend_usd
FROM cache_requests
GROUP BY task_type
ORDER BY input_tokens DESC NULLS LAST
