-- name: litellm_spend_logs_since
-- params: since (timestamptz or NULL), table (an identifier, composed by psycopg.sql, never text)
-- description: LiteLLM proxy spend-log rows started at or after `since` (all rows when NULL), in
--   `startTime` order with the request id as tie-breaker, so a run's watermark is its last row.
--   Read through a server-side cursor in a read-only transaction (one consistent snapshot, paged).
SELECT *
FROM {table}
WHERE %(since)s::timestamptz IS NULL OR "startTime" >= %(since)s::timestamptz
ORDER BY "startTime", request_id
