-- name: load_requests
-- description: The request columns the dataset stage reads, oldest first (ties by request_id) so every
--   later step (session collapse, representative choice, split order) is deterministic.
SELECT request_id, ts, provider, endpoint, model, user_id, session_id, system_text, messages, tools_json,
       request_params, response_text, response_tool_calls, n_choices, finish_reason, finish_reason_raw,
       status_code, error_type, feedback_score
FROM requests
ORDER BY ts NULLS FIRST, request_id
