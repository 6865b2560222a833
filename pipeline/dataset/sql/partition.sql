-- name: partition
-- params: whitespace, buckets, label_files, turn_count_files
-- description: The request columns the dataset stage reads (of the `requests` in view: one date
--   partition per task), joined with the audit's labels (the last row per request_id, among the
--   labels of these requests only; null label columns when the audit did not run), each with the bucket of its
--   conversation start, so that a final conversation state and every request it extends share a
--   bucket. The start is what the session collapse compares (examples.prefix_keys: text stripped,
--   role defaulting to user, the response as the last turn): the system prompt and the first turn,
--   and the second turn too unless the first is an assistant turn (a request with no prompt is
--   its response alone, and a conversation opening with that answer must meet it). Texts enter as
--   strip_prefix (strip_prefix_macro.sql): equal once stripped, always the same bucket. `failed` is
--   the store's one outcome rule (request_failed, pipeline/workdir/sql/request_outcome.sql). The
--   audit's token count of the request's new turn (turn_*; null without it) saves tokenizing that
--   text again (bucket.prime_audit_counts).
WITH r AS (
    SELECT *, coalesce(len(messages), 0) AS n_messages FROM requests
),
turns AS (
    SELECT *,
           CASE WHEN n_messages >= 1 THEN coalesce(nullif(messages[1].role, ''), 'user') ELSE 'assistant' END AS role0,
           CASE WHEN n_messages >= 1 THEN coalesce(messages[1].content, '') ELSE coalesce(response_text, '') END AS text0,
           CASE WHEN n_messages >= 2 THEN coalesce(nullif(messages[2].role, ''), 'user') ELSE 'assistant' END AS role1,
           CASE WHEN n_messages >= 2 THEN coalesce(messages[2].content, '') ELSE coalesce(response_text, '') END AS text1
    FROM r
)
SELECT t.request_id, t.ts, t.provider, t.endpoint, t.model, t.user_id, t.session_id, t.system_text, t.messages,
       t.tools_json, t.request_params, t.response_text, t.response_tool_calls, t.n_choices, t.finish_reason,
       t.finish_reason_raw, t.feedback_score,
       request_failed(t.finish_reason, t.error_type, t.status_code) AS failed,
       l.task_type, l.regenerated, l.edited, l.feedback_rating,
       k.turn.e AS turn_encoding, k.turn.k AS turn_key, k.turn.n AS turn_tokens,
       hash(
           strip_prefix(coalesce(t.system_text, ''), $whitespace),
           t.role0,
           strip_prefix(t.text0, $whitespace),
           CASE WHEN t.role0 <> 'assistant' THEN t.role1 END,
           CASE WHEN t.role0 <> 'assistant' THEN strip_prefix(t.text1, $whitespace) END
       ) % $buckets AS bucket
FROM turns t
LEFT JOIN (
    SELECT request_id AS label_request_id, task_type, regenerated, edited, feedback_rating
    FROM read_parquet($label_files, union_by_name = true, file_row_number = true)
    WHERE request_id IN (SELECT request_id FROM requests)
    QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY file_row_number DESC) = 1
) l ON l.label_request_id = t.request_id
LEFT JOIN (
    -- keyed by the id's hash, not the id (the join's memory: a pair is a fact about a text, so one
    -- that a hash collision brought to another request is still true)
    SELECT hash(request_id) AS turn_request, arg_min({'e': encoding, 'k': new_turn_key, 'n': new_turn_tokens},
                                                     new_turn_key) AS turn
    FROM read_parquet($turn_count_files, union_by_name = true)
    WHERE new_turn_key IS NOT NULL AND hash(request_id) IN (SELECT hash(request_id) FROM requests)
    GROUP BY 1
) k ON k.turn_request = hash(t.request_id)
