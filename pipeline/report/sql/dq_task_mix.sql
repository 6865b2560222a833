-- name: dq_task_mix
-- params: recent_start
-- description: Task-type counts of the train split (dataset lineage) beside those of recent traffic
--   (audit request_labels after $recent_start): the checklist's distribution-match input.
WITH train AS (
    SELECT task_type, count(*) AS n FROM lineage WHERE kind = 'example' AND split = 'train' GROUP BY ALL
),
recent AS (
    SELECT task_type, count(*) AS n FROM request_labels WHERE ts > $recent_start GROUP BY ALL
)
SELECT coalesce(t.task_type, r.task_type) AS task_type, coalesce(t.n, 0) AS train, coalesce(r.n, 0) AS recent
FROM train t FULL OUTER JOIN recent r USING (task_type)
ORDER BY task_type
