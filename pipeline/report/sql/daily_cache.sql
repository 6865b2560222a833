-- name: daily_cache
-- params: path
-- description: Cacheable share per day as the cache audit simulated it (cache_by_day.parquet).
SELECT CAST(day AS DATE) AS day, as_logged_share, ideal_share, reported_cached_share
FROM read_parquet($path)
WHERE day IS NOT NULL
ORDER BY day
