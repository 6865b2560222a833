-- name: traffic_latency
-- params: -
-- description: Latency and time-to-first-token percentiles (linear interpolation) overall, per model
--   and per task type, over successful synchronous calls (failed calls are reported separately:
--   a 429 returns in milliseconds and a 500 can hang for seconds, neither is the model's speed).
SELECT
    CASE WHEN grouping(model) = 0 THEN 'model' WHEN grouping(task_type) = 0 THEN 'task_type'
         ELSE 'overall' END AS dimension,
    coalesce(CASE WHEN grouping(model) = 0 THEN model WHEN grouping(task_type) = 0 THEN task_type END, 'all') AS key,
    count(latency_ms) AS n_latency,
    quantile_cont(latency_ms, 0.5) AS latency_p50_ms,
    quantile_cont(latency_ms, 0.9) AS latency_p90_ms,
    quantile_cont(latency_ms, 0.99) AS latency_p99_ms,
    count(ttft_ms) AS n_ttft,
    quantile_cont(ttft_ms, 0.5) AS ttft_p50_ms,
    quantile_cont(ttft_ms, 0.9) AS ttft_p90_ms,
    quantile_cont(ttft_ms, 0.99) AS ttft_p99_ms
FROM traffic_base
WHERE NOT is_batch AND NOT failed AND (latency_ms IS NOT NULL OR ttft_ms IS NOT NULL)
GROUP BY GROUPING SETS ((), (model), (task_type))
ORDER BY dimension, n_latency DESC, key
