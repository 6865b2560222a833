-- name: signals_explicit_edits
-- params: -
-- description: Requests carrying feedback or metadata, where a format may put an explicit edit
--   or correction of the response (LangSmith `correction`, annotation tools).
SELECT request_id, response_text, feedback_json, metadata_json
FROM requests
WHERE feedback_json IS NOT NULL OR metadata_json IS NOT NULL
