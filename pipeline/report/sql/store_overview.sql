-- name: store_overview
-- params: long_output_tokens
-- description: Counts the report needs that no audit table carries: succeeded and rate-limited
--   calls, the share using reasoning tokens or long outputs (the frontier-reasoning proxy) and
--   the log window. Plain counting over the store; no audit figure is recomputed here.
SELECT
    count(*) AS requests,
    count(*) FILTER (WHERE error_type IS NULL AND coalesce(status_code, 200) < 400) AS succeeded,
    count(*) FILTER (WHERE status_code = 429 OR error_type ILIKE '%rate_limit%') AS rate_limited,
    count(*) FILTER (WHERE error_type IS NOT NULL OR coalesce(status_code, 200) >= 400) AS errors,
    count(*) FILTER (WHERE coalesce(out_reasoning, 0) > 0 OR coalesce(out_total, 0) > $long_output_tokens)
        AS reasoning_or_long,
    min(ts) AS first_ts,
    max(ts) AS last_ts
FROM requests
