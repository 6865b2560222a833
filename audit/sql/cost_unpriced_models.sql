-- name: cost_unpriced_models
-- params: -
-- description: Models with usage but no entry in the price table (their spend is missing from totals).
SELECT coalesce(model, model_resolved, '(none)') AS model, count(*) AS requests, sum(input_tokens) AS input_tokens,
       sum(out_total) AS output_tokens
FROM request_costs
WHERE price_model_key IS NULL AND NOT usage_missing
GROUP BY ALL
ORDER BY requests DESC, model
