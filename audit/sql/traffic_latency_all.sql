-- name: traffic_latency_all
-- params: -
-- description: Latency percentiles over every synchronous call that logged one, failed calls included.
SELECT count(latency_ms) AS n_latency,
       quantile_cont(latency_ms, 0.5) AS latency_p50_ms,
       quantile_cont(latency_ms, 0.9) AS latency_p90_ms,
       quantile_cont(latency_ms, 0.99) AS latency_p99_ms
FROM traffic_base
WHERE NOT is_batch
