-- name: traffic_errors
-- params: -
-- description: Failed calls, rate-limited (HTTP 429) calls and server errors, overall, per model
--   and per task type.
SELECT
    CASE WHEN grouping(model) = 0 THEN 'model' WHEN grouping(task_type) = 0 THEN 'task_type'
         ELSE 'overall' END AS dimension,
    coalesce(CASE WHEN grouping(model) = 0 THEN model WHEN grouping(task_type) = 0 THEN task_type END, 'all') AS key,
    count(*) AS requests,
    count(*) FILTER (WHERE failed) AS failed,
    count(*) FILTER (WHERE rate_limited) AS rate_limited,
    count(*) FILTER (WHERE server_error) AS server_errors,
    count(*) FILTER (WHERE failed) / count(*) AS failed_share,
    count(*) FILTER (WHERE rate_limited) / count(*) AS rate_limited_share
FROM traffic_base
GROUP BY GROUPING SETS ((), (model), (task_type))
ORDER BY dimension, requests DESC, key
