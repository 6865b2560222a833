-- name: cost_totals
-- params: -
-- description: Whole-window spend, the log window and the rows that carry a reported cost.
SELECT
    count(*) AS requests,
    count(*) FILTER (WHERE priced) AS priced_requests,
    count(*) FILTER (WHERE usage_missing) AS requests_without_usage,
    count(*) FILTER (WHERE price_model_key IS NULL) AS requests_unpriced_model,
    coalesce(sum(cost_usd), 0) AS cost_usd,
    coalesce(sum(cost_uncached_usd), 0) AS cost_uncached_usd,
    coalesce(sum(cost_input_usd), 0) AS cost_input_usd,
    coalesce(sum(cost_cached_input_usd), 0) AS cost_cached_input_usd,
    coalesce(sum(cost_cache_write_usd), 0) AS cost_cache_write_usd,
    coalesce(sum(cost_output_usd), 0) AS cost_output_usd,
    coalesce(sum(batch_discount_usd), 0) AS batch_discount_usd,
    min(ts) AS first_ts,
    max(ts) AS last_ts,
    count(*) FILTER (WHERE cost_reported_usd IS NOT NULL AND priced) AS rows_with_reported_cost,
    sum(cost_reported_usd) FILTER (WHERE priced) AS reported_cost_usd,
    sum(cost_usd) FILTER (WHERE cost_reported_usd IS NOT NULL AND priced) AS recomputed_cost_usd_same_rows
FROM request_costs
