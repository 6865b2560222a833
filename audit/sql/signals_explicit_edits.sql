-- name: signals_explicit_edits
-- params: -
-- description: Requests whose feedback or metadata may carry an explicit edit or correction of
--   the response (LangSmith `correction`, annotation tools): a cheap text pre-filter on the key
--   names; audit/signals.py parses the JSON and checks the keys exactly.
SELECT request_id, response_text, feedback_json, metadata_json
FROM requests
WHERE regexp_matches(coalesce(feedback_json, ''), '"(correct|edit|ideal)[a-z_]*"\s*:')
   OR regexp_matches(coalesce(metadata_json, ''), '"(correct|edit|ideal)[a-z_]*"\s*:')
