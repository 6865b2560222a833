-- name: signals_edit_pairs
-- params: max_gap_s
-- description: Candidate (reply, next user turn) pairs for the edit signal, one per conversation
--   state that continues a conversation. The reply is found by content: the answered request,
--   earlier in the same session (else user), whose response equals the assistant message just
--   before the new user turn. When there is none (history edited in place, or a client that
--   sends no history), the conversation's latest earlier answer within $max_gap_s seconds.
WITH conv_requests AS (
    SELECT
        r.request_id,
        r.ts,
        coalesce(r.session_id, r.user_id) AS conv,
        f.state_hash,
        r.messages,
        len(r.messages) + 1 - list_position(list_reverse(list_transform(r.messages, lambda m: m.role)), 'user')
            AS last_user_pos
    FROM requests r
    JOIN features f USING (request_id)
    WHERE r.ts IS NOT NULL AND coalesce(r.session_id, r.user_id) IS NOT NULL AND len(r.messages) > 0
),
children AS (
    SELECT
        request_id,
        ts,
        conv,
        messages[last_user_pos].content AS user_text,
        CASE WHEN last_user_pos > 1 AND messages[last_user_pos - 1].role = 'assistant'
             THEN messages[last_user_pos - 1].content END AS history_reply
    FROM conv_requests
    WHERE last_user_pos <= len(messages)
    -- regenerations of a state repeat its user turn: the first attempt speaks for all of them
    QUALIFY row_number() OVER (PARTITION BY conv, state_hash ORDER BY ts, request_id) = 1
),
replies AS (
    SELECT
        r.request_id,
        r.ts,
        coalesce(r.session_id, r.user_id) AS conv,
        r.response_text,
        hash(trim(regexp_replace(r.response_text, '\s+', ' ', 'g'))) AS reply_hash
    FROM requests r
    JOIN features f USING (request_id)
    WHERE f.answered AND f.has_text AND coalesce(r.session_id, r.user_id) IS NOT NULL AND r.ts IS NOT NULL
),
by_content AS (
    SELECT
        c.request_id AS child_id,
        arg_max(p.request_id, p.ts) AS parent_id
    FROM children c
    JOIN replies p
      ON p.conv = c.conv
     AND p.reply_hash = hash(trim(regexp_replace(c.history_reply, '\s+', ' ', 'g')))
     AND p.ts < c.ts
    WHERE c.history_reply IS NOT NULL
    GROUP BY c.request_id
),
by_order AS (
    SELECT c.request_id AS child_id, p.request_id AS parent_id, p.ts AS parent_ts
    FROM (SELECT * FROM children WHERE request_id NOT IN (SELECT child_id FROM by_content)) c
    ASOF JOIN replies p ON p.conv = c.conv AND c.ts > p.ts
)
SELECT
    c.request_id AS child_id,
    coalesce(bc.parent_id, bo.parent_id) AS parent_id,
    CASE WHEN bc.parent_id IS NOT NULL THEN 'history' ELSE 'order' END AS matched_by,
    p.response_text AS reply,
    c.user_text,
    c.history_reply
FROM children c
LEFT JOIN by_content bc ON bc.child_id = c.request_id
LEFT JOIN by_order bo ON bo.child_id = c.request_id AND bo.parent_ts >= c.ts - to_seconds($max_gap_s)
JOIN replies p ON p.request_id = coalesce(bc.parent_id, bo.parent_id)
