-- name: signals_regeneration
-- params: window_s
-- description: Regenerations and retries. A conversation state is the identity (session, user),
--   the parent call, the masked system prompt, the tools and every message sent. When the same
--   state is sent again within $window_s seconds:
--   * after a FAILED attempt (error, 429, 5xx) the later request is a retry (`retry_of`);
--   * after a SUCCEEDED attempt (any returned answer, even empty or truncated) a later request
--     that succeeds too is a regeneration of the latest such attempt (`regeneration_of`).
--   An n > 1 request is never a regeneration itself (its choices are one call), though a later
--   resend can regenerate it. Requests without messages take no part. One sort + window pass.
WITH states AS (
    SELECT
        request_id,
        ts,
        failed,
        succeeded,
        multi_choice,
        coalesce(session_id, '') || chr(31) || coalesce(user_id, '') AS who,
        state_hash
    FROM features
    WHERE ts IS NOT NULL AND n_messages > 0
),
ordered AS (
    SELECT
        *,
        lag(request_id) OVER by_state AS prev_id,
        lag(ts) OVER by_state AS prev_ts,
        lag(failed) OVER by_state AS prev_failed,
        last_value(CASE WHEN succeeded THEN request_id END IGNORE NULLS) OVER before AS prev_succeeded_id,
        last_value(CASE WHEN succeeded THEN ts END IGNORE NULLS) OVER before AS prev_succeeded_ts
    FROM states
    WINDOW
        by_state AS (PARTITION BY who, state_hash ORDER BY ts, request_id),
        before AS (PARTITION BY who, state_hash ORDER BY ts, request_id
                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
),
flagged AS (
    SELECT
        request_id,
        CASE WHEN succeeded AND NOT multi_choice AND prev_succeeded_ts >= ts - to_seconds($window_s)
             THEN prev_succeeded_id END AS regeneration_of,
        CASE WHEN prev_failed AND prev_ts >= ts - to_seconds($window_s) THEN prev_id END AS retry_of
    FROM ordered
)
SELECT *
FROM flagged
WHERE regeneration_of IS NOT NULL OR retry_of IS NOT NULL
