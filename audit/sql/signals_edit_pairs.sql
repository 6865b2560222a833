-- name: signals_edit_pairs
-- params: max_gap_s
-- description: Candidate (reply, next user turn) pairs for the edit signal, one per conversation
--   state that continues a conversation. The reply is found by content: the answered request,
--   earlier in the same session (else user), whose response equals the assistant message just
--   before the new user turn. When there is none (history edited in place, or a client that
--   sends no history), the conversation's latest earlier answer within $max_gap_s seconds.
--   Reads TEMP TABLE features (turn texts, reply hashes) and `requests` for the reply texts.
--   The texts join the few rows that pair at the end: the window, the CTE and the joins carry keys
--   only (with the texts they spilled ~5 GB at 1 M requests).
WITH children AS (
    SELECT request_id, ts, coalesce(session_id, user_id) AS conv, history_reply_hash
    FROM features
    WHERE ts IS NOT NULL AND coalesce(session_id, user_id) IS NOT NULL AND last_user_text IS NOT NULL
    -- regenerations of a state repeat its user turn: the first attempt speaks for all of them
    QUALIFY row_number() OVER (PARTITION BY coalesce(session_id, user_id), state_hash ORDER BY ts, request_id) = 1
),
replies AS (
    SELECT request_id, ts, coalesce(session_id, user_id) AS conv, reply_hash
    FROM features
    WHERE answered AND reply_hash IS NOT NULL AND ts IS NOT NULL AND coalesce(session_id, user_id) IS NOT NULL
),
by_content AS (
    SELECT c.request_id AS child_id, arg_max(p.request_id, p.ts) AS parent_id
    FROM children c
    JOIN replies p
      ON p.conv = c.conv
     AND p.reply_hash = c.history_reply_hash
     AND p.ts < c.ts
    WHERE c.history_reply_hash IS NOT NULL
    GROUP BY c.request_id
),
by_order AS (
    SELECT c.request_id AS child_id, p.request_id AS parent_id, p.ts AS parent_ts
    FROM (SELECT * FROM children WHERE request_id NOT IN (SELECT child_id FROM by_content)) c
    ASOF JOIN replies p ON p.conv = c.conv AND c.ts > p.ts
),
pairs AS (
    SELECT
        c.request_id AS child_id,
        coalesce(bc.parent_id, bo.parent_id) AS parent_id,
        CASE WHEN bc.parent_id IS NOT NULL THEN 'history' ELSE 'order' END AS matched_by
    FROM children c
    LEFT JOIN by_content bc ON bc.child_id = c.request_id
    LEFT JOIN by_order bo ON bo.child_id = c.request_id AND bo.parent_ts >= c.ts - to_seconds($max_gap_s)
    WHERE coalesce(bc.parent_id, bo.parent_id) IS NOT NULL
)
SELECT p.child_id, p.parent_id, p.matched_by, r.response_text AS reply, f.last_user_text AS user_text,
       CASE WHEN p.matched_by = 'order' THEN f.history_reply END AS history_reply
FROM pairs p
JOIN features f ON f.request_id = p.child_id
JOIN requests r ON r.request_id = p.parent_id
