-- name: partition
-- params: whitespace, buckets, label_files
-- description: The request columns the dataset stage reads, joined with the audit's labels (the last
--   row per request_id; null label columns when the audit did not run), each with the bucket of its
--   conversation start: a hash of the system prompt and first message as the session collapse
--   compares them (leading and trailing whitespace stripped, role defaulting to user, the response
--   standing in for an empty prompt). Only the first 128 characters are hashed, after stripping on
--   the left and again on the right, so two texts equal once stripped always share a bucket.
SELECT r.request_id, r.ts, r.provider, r.endpoint, r.model, r.user_id, r.session_id, r.system_text, r.messages,
       r.tools_json, r.request_params, r.response_text, r.response_tool_calls, r.n_choices, r.finish_reason,
       r.finish_reason_raw, r.status_code, r.error_type, r.feedback_score,
       l.task_type, l.regenerated, l.edited, l.feedback_rating,
       hash(
           rtrim(left(ltrim(coalesce(r.system_text, ''), $whitespace), 128), $whitespace),
           CASE WHEN coalesce(len(r.messages), 0) > 0 THEN coalesce(nullif(r.messages[1].role, ''), 'user')
                ELSE 'assistant' END,
           rtrim(left(ltrim(CASE WHEN coalesce(len(r.messages), 0) > 0 THEN coalesce(r.messages[1].content, '')
                                 ELSE coalesce(r.response_text, '') END, $whitespace), 128), $whitespace)
       ) % $buckets AS bucket
FROM requests r
LEFT JOIN (
    SELECT request_id AS label_request_id, task_type, regenerated, edited, feedback_rating
    FROM read_parquet($label_files, union_by_name = true, file_row_number = true)
    QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY file_row_number DESC) = 1
) l ON l.label_request_id = r.request_id
