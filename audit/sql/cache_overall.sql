-- name: cache_overall
-- params: -
-- description: The whole-window row of cache_rollup.sql, plus why requests were not simulated.
--   Share of input tokens cacheable per scenario (simulated reads / input of simulated
--   requests), the provider-reported cached share (rows whose usage has cache fields), the gap
--   between them on rows that have both, and spend actual / without caching / per scenario.
--   Also the calibrated token segments and why requests were not simulated.
SELECT * EXCLUDE (level, model, task_type, day, provider, top_model, rules),
    (SELECT map(list(skip_reason ORDER BY skip_reason), list(n ORDER BY skip_reason))
     FROM (SELECT skip_reason, count(*) AS n FROM cache_requests WHERE NOT simulated GROUP BY skip_reason)) AS skip_reasons
FROM cache_rollup WHERE level = 'overall'
