-- name: cache_prepare_input
-- params: -
-- description: What the per-request preparation reads. No ORDER BY: preparation is a map, and the
--   simulation sorts its own (much narrower) input by partition and time.
SELECT
    request_id, ts, provider, model, model_resolved, system_text, messages, tools_json,
    cache_breakpoints, in_uncached, in_cache_read, in_cache_write_5m, in_cache_write_1h,
    in_cache_write_unspecified, usage_missing, status_code, finish_reason, error_type
FROM requests
