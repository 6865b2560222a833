-- name: weekly_task_mix
-- params: this_start, prev_start, end_ts
-- description: Requests per task type in each week, and whether the type existed before this week.
WITH firsts AS (
    SELECT task_type, min(ts) AS first_seen FROM request_labels GROUP BY ALL
)
SELECT
    l.task_type,
    min(l.task_label) AS task_label,
    count(*) FILTER (WHERE l.ts > $this_start) AS this_requests,
    count(*) FILTER (WHERE l.ts <= $this_start) AS prev_requests,
    any_value(f.first_seen) > $this_start AS new_this_week
FROM request_labels l
JOIN firsts f USING (task_type)
WHERE l.ts > $prev_start AND l.ts <= $end_ts
GROUP BY ALL
ORDER BY this_requests DESC, l.task_type
