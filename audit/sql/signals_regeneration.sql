-- name: signals_regeneration
-- params: window_s
-- description: Regenerations and retries. A conversation state is the identity (session, user),
--   the parent call, the masked system prompt, the tools and every message sent. When the same
--   state is sent again within $window_s seconds, the later request is a RETRY if the previous
--   attempt failed, and a REGENERATION (of the latest earlier answered attempt) if it is answered
--   itself. n > 1 requests and requests without messages take no part. One sort + window pass.
WITH states AS (
    SELECT
        request_id,
        ts,
        failed,
        answered,
        coalesce(session_id, '') || chr(31) || coalesce(user_id, '') AS who,
        state_hash
    FROM features
    WHERE ts IS NOT NULL AND NOT multi_choice AND n_messages > 0
),
ordered AS (
    SELECT
        *,
        lag(request_id) OVER by_state AS prev_id,
        lag(ts) OVER by_state AS prev_ts,
        lag(failed) OVER by_state AS prev_failed,
        last_value(CASE WHEN answered THEN request_id END IGNORE NULLS) OVER before AS prev_answered_id,
        last_value(CASE WHEN answered THEN ts END IGNORE NULLS) OVER before AS prev_answered_ts
    FROM states
    WINDOW
        by_state AS (PARTITION BY who, state_hash ORDER BY ts, request_id),
        before AS (PARTITION BY who, state_hash ORDER BY ts, request_id
                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
)
SELECT
    request_id,
    CASE WHEN answered AND prev_answered_ts >= ts - to_seconds($window_s) THEN prev_answered_id END
        AS regeneration_of,
    CASE WHEN prev_failed AND prev_ts >= ts - to_seconds($window_s) THEN prev_id END AS retry_of
FROM ordered
WHERE (answered AND prev_answered_ts >= ts - to_seconds($window_s))
   OR (prev_failed AND prev_ts >= ts - to_seconds($window_s))
