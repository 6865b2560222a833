-- name: tasks_content_links
-- params: -
-- description: The keys that link content-typed requests: document hash (null when the request
--   logged no prompt text: nothing to type it by), user skeleton, session. Reads TEMP TABLE
--   content_requests.
SELECT request_id, session_id, user_skeleton_fp, CASE WHEN trim(doc) <> '' THEN hash(doc) END AS doc_hash
FROM content_requests
ORDER BY request_id
