-- name: weekly_traffic
-- params: this_start, prev_start, end_ts
-- description: Requests, spend, reported cache reads and the simulated ideal cacheable tokens in this
--   week and the week before (half-open windows ending at the newest request), from the store and
--   the cost and cache audits' per-request tables.
SELECT
    CASE WHEN r.ts > $this_start THEN 'this' ELSE 'prev' END AS week,
    count(*) AS requests,
    count(*) FILTER (WHERE request_succeeded(r.finish_reason, r.error_type, r.status_code)) AS succeeded,
    CAST(sum(CAST(c.cost_usd AS DECIMAL(38, 18))) AS DOUBLE) AS spend_usd,
    count(c.cost_usd) AS priced_requests,
    sum(c.in_cache_read) AS cache_read_tokens,
    sum(c.input_tokens) AS input_tokens,
    sum(k.ideal_read) FILTER (WHERE k.simulated) AS cacheable_tokens,
    sum(k.input_tokens) FILTER (WHERE k.simulated) AS simulated_input_tokens
FROM requests r
LEFT JOIN request_costs c USING (request_id)
LEFT JOIN cache_requests k USING (request_id)
WHERE r.ts > $prev_start AND r.ts <= $end_ts
GROUP BY ALL
