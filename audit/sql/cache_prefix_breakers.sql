-- name: cache_prefix_breakers
-- params: min_request_share, min_saving_share
-- description: Dynamic spans early in otherwise-shared prompts, per task type, segment and kind:
--   how many requests they hit, where the divergence sits (median token offset), how much stable
--   text follows, and the tokens and USD that moving them after the stable part would save
--   (ideal ordering vs. ideal breakpoints, same breakpoint policy). `flagged` applies the
--   configured thresholds.
WITH tasks AS (
    SELECT task_type, count(*) AS task_requests,
           sum(input_tokens) FILTER (WHERE simulated) AS task_input_tokens,
           date_diff('day', CAST(min(ts) AS DATE), CAST(max(ts) AS DATE)) + 1 AS window_days
    FROM cache_requests
    GROUP BY task_type
),
win AS (
    SELECT date_diff('day', CAST(min(ts) AS DATE), CAST(max(ts) AS DATE)) + 1 AS days FROM cache_requests
),
b AS (
    SELECT
        task_type, mode(model ORDER BY model) AS model, breaker_segment, breaker_kind,
        count(*) AS requests,
        median(breaker_offset) AS median_divergence_offset_tokens,
        median(breaker_stable_after) AS median_stable_tokens_after,
        sum(ideal_read - ideal_bp_read) AS tokens_saved,
        CAST(sum(CAST(cost_sim_ideal_bp_usd AS DECIMAL(38, 18)) - CAST(cost_sim_ideal_usd AS DECIMAL(38, 18))) AS DOUBLE) AS usd_saved,
        any_value(breaker_example ORDER BY ts, request_id) AS example_span,
        list(request_id ORDER BY ts, request_id)[1:5] AS example_request_ids
    FROM cache_requests
    WHERE breaker_kind IS NOT NULL AND simulated
    GROUP BY task_type, breaker_segment, breaker_kind
)
SELECT
    b.*,
    b.requests / t.task_requests AS request_share,
    b.tokens_saved / nullif(t.task_input_tokens, 0) AS saving_share,
    b.usd_saved / win.days * 365.25 / 12 AS usd_saved_per_month,
    -- Without task labels every request is `unlabeled`, so "most of the task's requests" means
    -- nothing there; the saving threshold alone decides.
    coalesce((b.requests / t.task_requests >= $min_request_share OR b.task_type = 'unlabeled')
             AND b.tokens_saved / nullif(t.task_input_tokens, 0) >= $min_saving_share, false) AS flagged
FROM b JOIN tasks t USING (task_type), win
-- ties (often 0 saved) in a fixed order: DuckDB returns tied rows in any order on many threads
ORDER BY flagged DESC, usd_saved DESC, task_type, breaker_segment, breaker_kind
