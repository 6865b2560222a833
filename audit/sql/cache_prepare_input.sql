-- name: cache_prepare_input
-- params: -
-- description: What the per-request preparation reads. No ORDER BY: preparation is a map, and the
--   simulation sorts its own (much narrower) input by partition and time. `failed` is the store's
--   one outcome rule (request_failed, pipeline/workdir/sql/request_outcome.sql).
SELECT
    request_id, ts, provider, model, model_resolved, system_text, messages, tools_json,
    cache_breakpoints, in_uncached, in_cache_read, in_cache_write_5m, in_cache_write_1h,
    in_cache_write_unspecified, usage_missing,
    request_failed(finish_reason, error_type, status_code) AS failed
FROM requests
