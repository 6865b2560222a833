-- name: split_task_examples
-- params: -
-- description: Kept examples per task type (the base of each type's eval target).
SELECT task, sum(size) AS examples FROM groups GROUP BY task
