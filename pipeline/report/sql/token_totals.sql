-- name: token_totals
-- params: path
-- description: Input, output and reported cache-read tokens over the window, summed from the cost
--   audit's per-request table (request_costs.parquet).
SELECT
    sum(input_tokens) AS input_tokens,
    sum(out_total) AS output_tokens,
    sum(in_cache_read) AS cache_read_tokens
FROM read_parquet($path)
