-- name: cost_rollup
-- params: -
-- description: Every spend figure defined once, over the whole window and per model as logged
--   (`level` says which); cost_by_model and cost_totals select one level each. Money is summed
--   exactly (DECIMAL(38, 18)), so both levels add the same amounts the same way; the logged
--   cost_reported_usd is unbounded, so it is summed as a float in a fixed order
--   (docs/architecture.md "Deterministic figures"), over the rows that have one: the ordered sum
--   sorts what it is given, and most logs carry no reported cost (1 M requests: 1.6 -> 0.3 s).
SELECT
    CASE WHEN GROUPING(model) = 0 THEN 'model' ELSE 'overall' END AS level,
    model,
    min(provider) AS provider,
    min(price_model_key) AS price_model_key,
    count(*) AS requests,
    count(*) FILTER (WHERE priced) AS priced_requests,
    count(*) FILTER (WHERE usage_missing) AS requests_without_usage,
    count(*) FILTER (WHERE price_model_key IS NULL) AS requests_unpriced_model,
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
    sum(cost_reported_usd ORDER BY request_id, cost_reported_usd) FILTER (WHERE cost_reported_usd IS NOT NULL)
        AS cost_reported_usd,
    min(ts) AS first_ts,
    max(ts) AS last_ts,
    count(*) FILTER (WHERE cost_reported_usd IS NOT NULL AND priced) AS rows_with_reported_cost,
    sum(cost_reported_usd ORDER BY request_id, cost_reported_usd) FILTER (WHERE priced AND cost_reported_usd IS NOT NULL)
        AS reported_cost_usd,
    CAST(sum(CAST(cost_usd AS DECIMAL(38, 18))) FILTER (WHERE cost_reported_usd IS NOT NULL AND priced) AS DOUBLE)
        AS recomputed_cost_usd_same_rows
FROM request_costs
GROUP BY GROUPING SETS ((model), ())
