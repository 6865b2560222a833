-- name: cache_prepare_input
-- params: -
-- description: What the per-request preparation computes of a batch of its partition's rows (read
--   straight from the Parquet files: audit/cache.py `PREPARE_INPUT_COLUMNS`, `partition_batches`),
--   registered as `batch`: `failed`, the store's one outcome rule (request_failed,
--   pipeline/workdir/sql/request_outcome.sql), in the batch's row order.
SELECT request_failed(finish_reason, error_type, status_code) AS failed
FROM batch
