-- name: latency_histogram
-- params: bins_per_decade
-- description: Non-batch latencies in logarithmic bins (bin k covers 10^(k/b) .. 10^((k+1)/b) ms):
--   latency spans 50 ms to a minute, so equal-width bins would crowd everything into one.
SELECT
    CAST(floor(log10(greatest(latency_ms, 1)) * $bins_per_decade) AS INTEGER) AS bin,
    count(*) AS requests
FROM requests
WHERE latency_ms IS NOT NULL AND latency_ms > 0 AND NOT coalesce(is_batch, false)
GROUP BY ALL
ORDER BY bin
