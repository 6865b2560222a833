-- name: dq_train_by_task
-- params: -
-- description: Train examples per task type (weights for the format-consistency criterion).
SELECT task_type, count(*) AS train
FROM lineage
WHERE kind = 'example' AND split = 'train'
GROUP BY ALL
ORDER BY task_type
