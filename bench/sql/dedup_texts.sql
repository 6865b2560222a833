-- name: dedup_texts
-- params: limit
-- description: The user + assistant text of each conversation's final state (the last answered
--   request of a session, or a request without one), oldest first: what the dataset stage
--   deduplicates. A contiguous time window keeps the planted near-duplicates (regenerations,
--   repeated questions) together in a sample.
SELECT request_id,
       concat_ws(chr(10),
                 list_aggregate(list_transform(messages, lambda m: m.content), 'string_agg', chr(10)),
                 response_text) AS text
FROM requests
WHERE response_text IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY coalesce(session_id, request_id) ORDER BY ts DESC, request_id DESC) = 1
ORDER BY ts, request_id
LIMIT $limit
