-- name: cost_by_model
-- params: -
-- description: Spend per model as logged, with the price entry that billed it and its components
--   (defined in cost_rollup.sql).
SELECT model, provider, price_model_key,
    requests, priced_requests, requests_without_usage, batch_requests,
    input_tokens, cache_read_tokens, cache_write_tokens, output_tokens,
    cost_input_usd, cost_cached_input_usd, cost_cache_write_usd, cost_output_usd, batch_discount_usd,
    cost_usd, cost_uncached_usd, cost_reported_usd
FROM cost_rollup WHERE level = 'model'
ORDER BY cost_usd DESC, requests DESC, model NULLS LAST
