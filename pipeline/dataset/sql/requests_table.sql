-- name: requests_table
-- params: requests
-- description: Every request with its filter outcome, and its position in the stage's request order
--   (oldest first, ties by request_id).
CREATE TABLE req AS
SELECT row_number() OVER (ORDER BY ts NULLS FIRST, request_id) AS pos, request_id, ts, task_type, reason, detail,
       tokens, assistant_tokens
FROM read_parquet($requests)
