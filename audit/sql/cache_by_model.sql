-- name: cache_by_model
-- params: -
-- description: Cache metrics per model (defined in cache_rollup.sql).
SELECT model, provider, rules,
    requests, simulated_requests, requests_with_cache_fields, input_tokens, simulated_input_tokens,
    as_logged_read, as_logged_write, ideal_bp_read, ideal_read, reported_read, reported_write,
    as_logged_share, ideal_bp_share, ideal_share, reported_cached_share, gap_simulated_minus_reported,
    cost_usd, cost_uncached_usd, cost_sim_as_logged_usd, cost_sim_ideal_bp_usd, cost_sim_ideal_usd
FROM cache_rollup WHERE level = 'model'
ORDER BY input_tokens DESC NULLS LAST, model NULLS LAST
