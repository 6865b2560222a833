-- name: tasks_content_links
-- params: -
-- description: The keys that link content-typed requests: document hash, user skeleton, session.
--   Reads TEMP TABLE content_requests.
SELECT request_id, session_id, user_skeleton_fp, hash(doc) AS doc_hash
FROM content_requests
ORDER BY request_id
