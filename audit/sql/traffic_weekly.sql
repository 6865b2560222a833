-- name: traffic_weekly
-- params: -
-- description: Weekly (Monday-based, UTC) volume, failures, tokens and spend; `days_logged` marks
--   partial weeks at the edges of the window. Float sums are ordered (ORDER BY request_id): DuckDB's
--   threads would otherwise add them in a different order on every run.
SELECT
    week AS week_start,
    count(DISTINCT day) AS days_logged,
    count(*) AS requests,
    count(*) FILTER (WHERE failed) AS failed,
    count(*) FILTER (WHERE rate_limited) AS rate_limited,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    coalesce(sum(cost_usd ORDER BY request_id), 0) AS cost_usd
FROM traffic_base
WHERE week IS NOT NULL
GROUP BY week
ORDER BY week
