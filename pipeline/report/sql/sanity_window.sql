-- name: sanity_window
-- params: earliest, latest
-- description: The log window over plausible timestamps only (the window the report shows when
--   some timestamps are implausible), with the untrimmed bounds beside it.
SELECT
    min(ts) FILTER (WHERE ts BETWEEN CAST($earliest AS TIMESTAMPTZ) AND CAST($latest AS TIMESTAMPTZ)) AS first_ts,
    max(ts) FILTER (WHERE ts BETWEEN CAST($earliest AS TIMESTAMPTZ) AND CAST($latest AS TIMESTAMPTZ)) AS last_ts,
    min(ts) AS raw_first_ts,
    max(ts) AS raw_last_ts
FROM requests
