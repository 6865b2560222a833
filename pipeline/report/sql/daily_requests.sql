-- name: daily_requests
-- params: -
-- description: Requests per UTC day over the whole window, days without traffic included.
WITH days AS (
    SELECT CAST(unnest(generate_series(min(ts)::DATE, max(ts)::DATE, INTERVAL 1 DAY)) AS DATE) AS day
    FROM requests
    WHERE ts IS NOT NULL
),
counts AS (
    SELECT CAST(ts AS DATE) AS day, count(*) AS requests
    FROM requests
    WHERE ts IS NOT NULL
    GROUP BY ALL
)
SELECT days.day, coalesce(counts.requests, 0) AS requests
FROM days LEFT JOIN counts USING (day)
ORDER BY days.day
