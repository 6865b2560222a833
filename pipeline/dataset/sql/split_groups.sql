-- name: split_groups
-- params: -
-- description: One row per split group of kept examples (`group_of`: idx -> group for linked examples;
--   every other example is a group of its own): its size, its task type (the one most of its
--   examples have, ties alphabetical) and its place in the seeded order (the split key of its
--   smallest request id).
CREATE TABLE groups AS
WITH members AS (
    SELECT coalesce(g.grp, e.idx) AS grp, e.task_type, e.final_request_id, e.split_key
    FROM ex e LEFT JOIN group_of g USING (idx)
    WHERE e.uid NOT IN (SELECT uid FROM dup)
),
per_task AS (
    SELECT grp, task_type, count(*) AS n FROM members GROUP BY grp, task_type
)
SELECT s.grp, t.task, s.size, s.order_key, s.first_request_id
FROM (
    SELECT grp, count(*) AS size, arg_min(split_key, final_request_id) AS order_key,
           min(final_request_id) AS first_request_id
    FROM members GROUP BY grp
) s
JOIN (SELECT grp, first(task_type ORDER BY n DESC, task_type) AS task FROM per_task GROUP BY grp) t USING (grp)
