-- name: traffic_weekly
-- params: -
-- description: Weekly (Monday-based, UTC) volume, failures, tokens and spend; `days_logged` marks
--   partial weeks at the edges of the window. Money is summed exactly (DECIMAL(38, 18), see
--   docs/architecture.md "Deterministic figures").
SELECT
    week AS week_start,
    count(DISTINCT day) AS days_logged,
    count(*) AS requests,
    count(*) FILTER (WHERE failed) AS failed,
    count(*) FILTER (WHERE rate_limited) AS rate_limited,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    coalesce(CAST(sum(CAST(cost_usd AS DECIMAL(38, 18))) AS DOUBLE), 0) AS cost_usd
FROM traffic_base
WHERE week IS NOT NULL
GROUP BY week
ORDER BY week
