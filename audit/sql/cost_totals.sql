-- name: cost_totals
-- params: -
-- description: Whole-window spend, the log window and the rows that carry a reported cost.
--   Money is summed exactly (DECIMAL(38, 18)); the logged cost_reported_usd is unbounded, so it is
--   summed as a float in a fixed order (docs/architecture.md "Deterministic figures").
SELECT
    count(*) AS requests,
    count(*) FILTER (WHERE priced) AS priced_requests,
    count(*) FILTER (WHERE usage_missing) AS requests_without_usage,
    count(*) FILTER (WHERE price_model_key IS NULL) AS requests_unpriced_model,
    coalesce(CAST(sum(CAST(cost_usd AS DECIMAL(38, 18))) AS DOUBLE), 0) AS cost_usd,
    coalesce(CAST(sum(CAST(cost_uncached_usd AS DECIMAL(38, 18))) AS DOUBLE), 0) AS cost_uncached_usd,
    coalesce(CAST(sum(CAST(cost_input_usd AS DECIMAL(38, 18))) AS DOUBLE), 0) AS cost_input_usd,
    coalesce(CAST(sum(CAST(cost_cached_input_usd AS DECIMAL(38, 18))) AS DOUBLE), 0) AS cost_cached_input_usd,
    coalesce(CAST(sum(CAST(cost_cache_write_usd AS DECIMAL(38, 18))) AS DOUBLE), 0) AS cost_cache_write_usd,
    coalesce(CAST(sum(CAST(cost_output_usd AS DECIMAL(38, 18))) AS DOUBLE), 0) AS cost_output_usd,
    coalesce(CAST(sum(CAST(batch_discount_usd AS DECIMAL(38, 18))) AS DOUBLE), 0) AS batch_discount_usd,
    min(ts) AS first_ts,
    max(ts) AS last_ts,
    count(*) FILTER (WHERE cost_reported_usd IS NOT NULL AND priced) AS rows_with_reported_cost,
    sum(cost_reported_usd ORDER BY request_id, cost_reported_usd) FILTER (WHERE priced) AS reported_cost_usd,
    CAST(sum(CAST(cost_usd AS DECIMAL(38, 18))) FILTER (WHERE cost_reported_usd IS NOT NULL AND priced) AS DOUBLE) AS recomputed_cost_usd_same_rows
FROM request_costs
