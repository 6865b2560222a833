-- name: cost_by_model
-- params: -
-- description: Spend per model as logged, with the price entry that billed it and its components.
--   Money is summed exactly (DECIMAL(38, 18)); the logged cost_reported_usd is unbounded, so it is
--   summed as a float in a fixed order (docs/architecture.md "Deterministic figures").
SELECT
    model,
    min(provider) AS provider,
    min(price_model_key) AS price_model_key,
    count(*) AS requests,
    count(*) FILTER (WHERE priced) AS priced_requests,
    count(*) FILTER (WHERE usage_missing) AS requests_without_usage,
    count(*) FILTER (WHERE is_batch) AS batch_requests,
    sum(input_tokens) AS input_tokens,
    sum(in_cache_read) AS cache_read_tokens,
    sum(in_cache_write_5m + in_cache_write_1h + in_cache_write_unspecified) AS cache_write_tokens,
    sum(out_total) AS output_tokens,
    coalesce(CAST(sum(CAST(cost_input_usd AS DECIMAL(38, 18))) AS DOUBLE), 0) AS cost_input_usd,
    coalesce(CAST(sum(CAST(cost_cached_input_usd AS DECIMAL(38, 18))) AS DOUBLE), 0) AS cost_cached_input_usd,
    coalesce(CAST(sum(CAST(cost_cache_write_usd AS DECIMAL(38, 18))) AS DOUBLE), 0) AS cost_cache_write_usd,
    coalesce(CAST(sum(CAST(cost_output_usd AS DECIMAL(38, 18))) AS DOUBLE), 0) AS cost_output_usd,
    coalesce(CAST(sum(CAST(batch_discount_usd AS DECIMAL(38, 18))) AS DOUBLE), 0) AS batch_discount_usd,
    coalesce(CAST(sum(CAST(cost_usd AS DECIMAL(38, 18))) AS DOUBLE), 0) AS cost_usd,
    coalesce(CAST(sum(CAST(cost_uncached_usd AS DECIMAL(38, 18))) AS DOUBLE), 0) AS cost_uncached_usd,
    sum(cost_reported_usd ORDER BY request_id, cost_reported_usd) AS cost_reported_usd
FROM request_costs
GROUP BY model
ORDER BY cost_usd DESC, requests DESC, model NULLS LAST
