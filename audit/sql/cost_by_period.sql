-- name: cost_by_period
-- params: grain
-- description: Requests, tokens and spend per calendar day / week (Monday) / month (UTC).
SELECT
    $grain AS grain,
    CAST(date_trunc($grain, ts) AS DATE) AS period_start,
    count(*) AS requests,
    count(*) FILTER (WHERE priced) AS priced_requests,
    sum(input_tokens) AS input_tokens,
    sum(in_cache_read) AS cache_read_tokens,
    sum(out_total) AS output_tokens,
    coalesce(CAST(sum(CAST(cost_usd AS DECIMAL(38, 18))) AS DOUBLE), 0) AS cost_usd,
    coalesce(CAST(sum(CAST(cost_uncached_usd AS DECIMAL(38, 18))) AS DOUBLE), 0) AS cost_uncached_usd
FROM request_costs
WHERE ts IS NOT NULL
GROUP BY ALL
ORDER BY period_start
