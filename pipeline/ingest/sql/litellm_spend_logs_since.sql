-- name: litellm_spend_logs_since
-- params: since
-- identifiers: table
-- description: LiteLLM proxy spend-log rows started at or after `since` (a timestamptz, or NULL for
--   all rows) from `table` (an identifier composed by psycopg.sql, never text), in
--   `startTime` order with the request id as tie-breaker, so a run's watermark is its last row.
--   Read through a server-side cursor in a read-only transaction (one consistent snapshot, paged).
SELECT *
FROM {table}
WHERE %(since)s::timestamptz IS NULL OR "startTime" >= %(since)s::timestamptz
ORDER BY "startTime", request_id
