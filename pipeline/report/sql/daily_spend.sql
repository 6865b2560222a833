-- name: daily_spend
-- params: path
-- description: Spend and reported cache reads per day, read from the cost audit's cost_by_period table.
SELECT
    period_start AS day,
    cost_usd AS spend_usd,
    CASE WHEN input_tokens > 0 THEN cache_read_tokens / input_tokens END AS reported_cached_share
FROM read_parquet($path)
WHERE grain = 'day' AND period_start IS NOT NULL
ORDER BY day
