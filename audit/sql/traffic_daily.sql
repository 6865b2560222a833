-- name: traffic_daily
-- params: -
-- description: Requests and spend per calendar day (UTC), split into synchronous and batch traffic:
--   the growth fit uses the synchronous part, because a batch job lands as one bulk spike.
SELECT
    day,
    count(*) FILTER (WHERE NOT is_batch) AS requests,
    count(*) FILTER (WHERE is_batch) AS batch_requests,
    coalesce(CAST(sum(CAST(cost_usd AS DECIMAL(38, 18))) FILTER (WHERE NOT is_batch) AS DOUBLE), 0) AS cost_usd,
    coalesce(CAST(sum(CAST(cost_usd AS DECIMAL(38, 18))) FILTER (WHERE is_batch) AS DOUBLE), 0) AS batch_cost_usd
FROM traffic_base
WHERE day IS NOT NULL
GROUP BY day
ORDER BY day
