-- name: traffic_daily
-- params: -
-- description: Requests and spend per calendar day (UTC), split into synchronous and batch traffic:
--   the growth fit uses the synchronous part, because a batch job lands as one bulk spike.
SELECT
    day,
    count(*) FILTER (WHERE NOT is_batch) AS requests,
    count(*) FILTER (WHERE is_batch) AS batch_requests,
    coalesce(sum(cost_usd) FILTER (WHERE NOT is_batch), 0) AS cost_usd,
    coalesce(sum(cost_usd) FILTER (WHERE is_batch), 0) AS batch_cost_usd
FROM traffic_base
WHERE day IS NOT NULL
GROUP BY day
ORDER BY day
