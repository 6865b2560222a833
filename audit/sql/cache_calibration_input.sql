-- name: cache_calibration_input
-- params: max_requests
-- description: The as-logged simulation's input for calibration, per cache scope (provider and
--   model) that has provider-reported cache fields, in time order. Each scope keeps its earliest
--   $max_requests simulated requests: a contiguous window, so every cache entry those requests
--   could read was written inside it. One scope's requests in time order form one valid
--   simulation partition (entries are keyed by hashes seeded with the scope).
WITH evidence AS (
    SELECT scope FROM prepared
    WHERE simulated AND has_cache_fields AND reported_input IS NOT NULL AND rules <> 'none'
    GROUP BY scope
),
firsts AS (  -- the window over keys only: over every column it sorted ~0.4 KB a request
    SELECT p.request_id
    FROM prepared p JOIN evidence USING (scope)
    WHERE p.simulated
    QUALIFY row_number() OVER (PARTITION BY p.scope ORDER BY p.ts_ms, p.request_id) <= $max_requests
)
SELECT
    request_id, ts_ms, scope, provider, model, rules, min_tokens, factor, approximate, reported_input,
    reported_read, has_cache_fields, est_total, n_blocks, token_hashes, block_ends, block_hashes,
    bp_blocks, bp_1h, bp_source, stable_end, history_end
FROM prepared SEMI JOIN firsts USING (request_id)
ORDER BY scope, ts_ms, request_id
