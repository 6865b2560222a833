-- name: cost_window
-- params: -
-- description: The log window (first and last request) without the spend figures: what a module
--   that projects per month needs (the same aggregates as cost_rollup.sql's overall row).
SELECT min(ts) AS first_ts, max(ts) AS last_ts
FROM request_costs
