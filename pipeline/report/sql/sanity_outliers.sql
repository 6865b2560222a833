-- name: sanity_outliers
-- params: max_tokens, earliest, latest, max_cost_usd, limit
-- description: Requests whose figures no real API call can have: more tokens than any model's
--   context window, a timestamp outside the plausible window, or a cost above the per-request
--   ceiling (joined from the cost audit's `request_costs` view). One row per outlier and reason,
--   the largest first, at most `limit` per reason.
WITH r AS (
    SELECT
        q.request_id, q.ts, q.model, q.source_file, q.source_line,
        coalesce(q.in_uncached, 0) + coalesce(q.in_cache_read, 0) + coalesce(q.in_cache_write_5m, 0)
            + coalesce(q.in_cache_write_1h, 0) + coalesce(q.in_cache_write_unspecified, 0)
            + coalesce(q.out_total, 0) AS tokens,
        c.cost_usd
    FROM requests q
    LEFT JOIN request_costs c USING (request_id)
),
flagged AS (
    SELECT 'tokens' AS reason, request_id, ts, model, source_file, source_line, tokens, cost_usd,
           tokens::DOUBLE AS size
    FROM r WHERE tokens > $max_tokens
    UNION ALL
    SELECT 'timestamp', request_id, ts, model, source_file, source_line, tokens, cost_usd,
           abs(epoch(ts) - epoch(CAST($latest AS TIMESTAMPTZ)))
    FROM r WHERE ts < CAST($earliest AS TIMESTAMPTZ) OR ts > CAST($latest AS TIMESTAMPTZ)
    UNION ALL
    SELECT 'cost', request_id, ts, model, source_file, source_line, tokens, cost_usd, cost_usd
    FROM r WHERE cost_usd > $max_cost_usd
)
SELECT reason, request_id, ts, model, source_file, source_line, tokens, cost_usd,
       count(*) OVER (PARTITION BY reason) AS reason_total
FROM flagged
QUALIFY row_number() OVER (PARTITION BY reason ORDER BY size DESC, request_id) <= $limit
ORDER BY reason, size DESC, request_id
