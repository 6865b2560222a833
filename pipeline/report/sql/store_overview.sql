-- name: store_overview
-- params: long_output_tokens
-- description: Counts the report needs that no audit table carries: succeeded and rate-limited
--   calls, the share using reasoning tokens or long outputs (the frontier-reasoning proxy) and
--   the log window. Plain counting over the store; no audit figure is recomputed here.
SELECT
    count(*) AS requests,
    count(*) FILTER (WHERE request_succeeded(finish_reason, error_type, status_code)) AS succeeded,
    count(*) FILTER (WHERE request_rate_limited(status_code, error_type, error_message)) AS rate_limited,
    count(*) FILTER (WHERE request_failed(finish_reason, error_type, status_code)) AS errors,
    count(*) FILTER (WHERE coalesce(out_reasoning, 0) > 0 OR coalesce(out_total, 0) > $long_output_tokens)
        AS reasoning_or_long,
    min(ts) AS first_ts,
    max(ts) AS last_ts
FROM requests
