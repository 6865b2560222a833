-- name: cache_tokens_by_model
-- params: -
-- description: Token estimate vs provider-reported input per model: encoding used, whether it is an
--   approximation, the calibration factor (reported / estimated) and the per-request error of the
--   raw estimate (median and p90 of |estimate - reported| / reported, and the signed mean).
SELECT
    model, min(encoding) AS encoding, bool_or(approximate) AS approximate,
    count(*) FILTER (WHERE est_total > 0) AS requests_with_prompt,
    count(*) FILTER (WHERE estimate_error IS NOT NULL) AS requests_with_usage,
    sum(reported_input) FILTER (WHERE estimate_error IS NOT NULL)
        / nullif(sum(est_total) FILTER (WHERE estimate_error IS NOT NULL), 0) AS calibration_factor,
    median(abs(estimate_error)) AS median_abs_error,
    quantile_cont(abs(estimate_error), 0.9) AS p90_abs_error,
    avg(CAST(estimate_error AS DECIMAL(38, 18))) AS mean_signed_error,
    sum(tok_tools) AS tok_tools, sum(tok_system) AS tok_system, sum(tok_history) AS tok_history,
    sum(tok_new_turn) AS tok_new_turn
FROM cache_requests
GROUP BY model
ORDER BY requests_with_prompt DESC, model NULLS LAST
