-- name: cache_requests
-- params: -
-- description: One row per request: calibrated token segments, simulated cache reads/writes per
--   scenario next to the provider-reported ones, the first prefix breaker, and the cost of each
--   scenario (the request's input repriced with the simulated reads and writes), and the new
--   turn's token count by content key.
WITH scope_factor AS (
    SELECT scope, median(factor) AS factor
    FROM prepared
    WHERE factor IS NOT NULL AND factor BETWEEN 0.2 AND 5
    GROUP BY scope
),
p AS (
    SELECT p.*,
           coalesce(p.factor, s.factor, 1.0) AS k,
           coalesce(p.reported_input, CAST(round(p.est_total * coalesce(p.factor, s.factor, 1.0)) AS BIGINT)) AS input_tokens
    FROM prepared p LEFT JOIN scope_factor s USING (scope)
),
joined AS (
    SELECT
        p.request_id, p.ts, CAST(p.ts AS DATE) AS day, p.provider, p.model, rc.price_model_key,
        coalesce(l.task_type, 'unlabeled') AS task_type,
        p.rules, p.min_tokens, p.encoding, p.approximate, p.simulated, p.skip_reason, p.has_cache_fields,
        p.reported_input, p.est_total, p.k AS calibration_factor, p.input_tokens,
        -- The logged prompt misses (or redacts) a third or more of what was billed: its positions are
        -- scaled by the calibration factor, an approximation.
        p.reported_input IS NOT NULL AND p.est_total > 0 AND NOT p.k BETWEEN 0.67 AND 1.5 AS prompt_incomplete,
        p.bp_source,
        round(p.est_tools * p.k) AS tok_tools, round(p.est_system * p.k) AS tok_system,
        round(p.est_history * p.k) AS tok_history, round(p.est_new_turn * p.k) AS tok_new_turn,
        CASE WHEN p.reported_input > 0 AND p.est_total > 0
             THEN (p.est_total - p.reported_input) / p.reported_input END AS estimate_error,
        coalesce(rc.in_cache_read, 0) AS reported_read,
        coalesce(rc.in_cache_write_5m + rc.in_cache_write_1h + rc.in_cache_write_unspecified, 0) AS reported_write,
        a.read AS as_logged_read, a.write_5m AS as_logged_write_5m, a.write_1h AS as_logged_write_1h,
        b.read AS ideal_bp_read, b.write_5m AS ideal_bp_write_5m, b.write_1h AS ideal_bp_write_1h,
        -- Ideal ordering moves a span only where that helps: a span that is stable within a
        -- session (and varies only across sessions) would lose its cache hits at the end.
        CASE WHEN c.read >= b.read THEN c.read ELSE b.read END AS ideal_read,
        CASE WHEN c.read >= b.read THEN c.write_5m ELSE b.write_5m END AS ideal_write_5m,
        CASE WHEN c.read >= b.read THEN c.write_1h ELSE b.write_1h END AS ideal_write_1h,
        p.dynamic_spans, p.breaker_segment, p.breaker_kind,
        CAST(round(p.breaker_offset * p.k) AS BIGINT) AS breaker_offset,
        CAST(round(p.breaker_stable_after * p.k) AS BIGINT) AS breaker_stable_after,
        p.breaker_example,
        -- the last message when it is the new turn: its content hash and token count under `encoding`
        -- (the dataset's token counts read these instead of tokenizing the text again)
        p.turn_key AS new_turn_key, p.turn_tokens AS new_turn_tokens,
        rc.priced, rc.cost_usd, rc.cost_uncached_usd, rc.out_total,
        pv.input AS price_input, pv.cached_input AS price_cached_input, pv.cache_write_5m AS price_write_5m,
        pv.cache_write_1h AS price_write_1h, pv.output AS price_output, pv.per_tokens,
        CASE WHEN rc.is_batch THEN 1 - coalesce(pv.batch_discount, 0) ELSE 1 END AS pay_share
    FROM p
    LEFT JOIN sim_as_logged a USING (request_id)
    LEFT JOIN sim_ideal_bp b USING (request_id)
    LEFT JOIN sim_ideal c USING (request_id)
    LEFT JOIN request_costs rc USING (request_id)
    LEFT JOIN price_versions pv ON pv.key = rc.price_model_key AND pv.effective_from = rc.price_effective_from
    LEFT JOIN (SELECT request_id, any_value(task_type) AS task_type FROM request_labels GROUP BY request_id) l
        USING (request_id)
)
SELECT
    * EXCLUDE (price_input, price_cached_input, price_write_5m, price_write_1h, price_output, per_tokens, pay_share),
    CASE WHEN simulated AND priced THEN
        ((input_tokens - as_logged_read - as_logged_write_5m - as_logged_write_1h) * price_input
         + as_logged_read * price_cached_input + as_logged_write_5m * price_write_5m
         + as_logged_write_1h * price_write_1h + out_total * price_output) / per_tokens * pay_share
    ELSE cost_usd END AS cost_sim_as_logged_usd,
    CASE WHEN simulated AND priced THEN
        ((input_tokens - ideal_bp_read - ideal_bp_write_5m - ideal_bp_write_1h) * price_input
         + ideal_bp_read * price_cached_input + ideal_bp_write_5m * price_write_5m
         + ideal_bp_write_1h * price_write_1h + out_total * price_output) / per_tokens * pay_share
    ELSE cost_usd END AS cost_sim_ideal_bp_usd,
    CASE WHEN simulated AND priced THEN
        ((input_tokens - ideal_read - ideal_write_5m - ideal_write_1h) * price_input
         + ideal_read * price_cached_input + ideal_write_5m * price_write_5m
         + ideal_write_1h * price_write_1h + out_total * price_output) / per_tokens * pay_share
    ELSE cost_usd END AS cost_sim_ideal_usd
FROM joined
ORDER BY ts, request_id
