-- name: litellm_spend_logs_since
-- params: since
-- description: LiteLLM proxy spend-log rows started at or after `$since` (all rows when NULL), in
--   `startTime` order with the request id as tie-breaker, so a run's watermark is its last row. Run
--   on PostgreSQL through psycopg (`SqlDir.postgres`): `{table}` is the table named in the URL, quoted
--   as an identifier; read through a server-side cursor in a read-only transaction (one snapshot, paged).
SELECT *
FROM {table}
WHERE $since::timestamptz IS NULL OR "startTime" >= $since::timestamptz
ORDER BY "startTime", request_id
