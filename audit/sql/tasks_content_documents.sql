-- name: tasks_content_documents
-- params: -
-- description: Distinct non-blank content documents (MinHash runs once per distinct text, not
--   per request). Reads TEMP TABLE content_requests.
SELECT hash(doc) AS doc_hash, any_value(doc) AS doc
FROM content_requests
WHERE trim(doc) <> ''
GROUP BY 1
ORDER BY 1
