-- name: per_task
-- params: -
-- description: Per task type: requests in / kept / dropped (with the position of the first of each,
--   so the manifest lists the keys in the order they first occur), examples built, and train/eval
--   examples and tokens (with the split of the task's first kept example, for the same reason).
WITH r AS (
    SELECT task_type, count(*) AS requests_in,
           count(*) FILTER (WHERE status = 'kept') AS requests_kept,
           count(*) FILTER (WHERE status <> 'kept') AS requests_dropped,
           min(pos) FILTER (WHERE status = 'kept') AS first_kept,
           min(pos) FILTER (WHERE status <> 'kept') AS first_dropped
    FROM status GROUP BY task_type
),
e AS (SELECT task_type, count(*) AS examples_built FROM ex GROUP BY task_type),
p AS (
    SELECT task_type,
           count(*) FILTER (WHERE split = 'train') AS train,
           sum(tokens) FILTER (WHERE split = 'train') AS train_tokens,
           count(*) FILTER (WHERE split = 'eval') AS eval,
           sum(tokens) FILTER (WHERE split = 'eval') AS eval_tokens,
           first(split ORDER BY ts NULLS FIRST, final_request_id) AS first_split
    FROM placed GROUP BY task_type
)
SELECT r.task_type, r.requests_in, r.requests_kept, r.requests_dropped, r.first_kept, r.first_dropped,
       e.examples_built, p.train, p.train_tokens, p.eval, p.eval_tokens, p.first_split
FROM r LEFT JOIN e USING (task_type) LEFT JOIN p USING (task_type)
ORDER BY r.task_type
