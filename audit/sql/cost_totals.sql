-- name: cost_totals
-- params: -
-- description: Whole-window spend, the log window and the rows that carry a reported cost (the
--   overall row of cost_rollup.sql).
SELECT requests, priced_requests, requests_without_usage, requests_unpriced_model,
    cost_usd, cost_uncached_usd, cost_input_usd, cost_cached_input_usd, cost_cache_write_usd, cost_output_usd,
    batch_discount_usd, first_ts, last_ts, rows_with_reported_cost, reported_cost_usd, recomputed_cost_usd_same_rows
FROM cost_rollup WHERE level = 'overall'
