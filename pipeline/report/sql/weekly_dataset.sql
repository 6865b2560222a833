-- name: weekly_dataset
-- params: this_start, prev_start, end_ts
-- description: Dataset outcomes per week of the request's time, from the dataset's lineage table:
--   examples written, duplicates dropped, and requests that reached the dedup stage.
WITH rows AS (
    SELECT l.kind, l.reason, r.ts
    FROM lineage l
    JOIN requests r USING (request_id)
    WHERE r.ts > $prev_start AND r.ts <= $end_ts
)
SELECT
    CASE WHEN ts > $this_start THEN 'this' ELSE 'prev' END AS week,
    count(*) FILTER (WHERE kind = 'example') AS examples,
    count(*) FILTER (WHERE kind = 'dropped' AND reason IN ('duplicate', 'near_duplicate')) AS duplicates,
    count(*) AS requests
FROM rows
GROUP BY ALL
