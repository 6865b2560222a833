-- name: cache_calibration_scopes
-- params: -
-- description: Every cache scope (provider and model) the simulation covers, with how many of its
--   requests carry provider-reported cache fields: the calibration's evidence, or its absence.
SELECT scope, min(provider) AS provider, mode(model ORDER BY model) AS model, mode(rules ORDER BY rules) AS rules,
    mode(min_tokens ORDER BY min_tokens) AS min_tokens,
    count(*) AS requests,
    count(*) FILTER (WHERE has_cache_fields AND reported_input IS NOT NULL) AS requests_with_cache_fields
FROM prepared
WHERE simulated
GROUP BY scope
ORDER BY scope
