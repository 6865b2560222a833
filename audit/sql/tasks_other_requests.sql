-- name: tasks_other_requests
-- params: -
-- description: Requests typed `other` (no task type of at least `min_type_requests` requests).
--   Reads TEMP TABLE task_assignment.
SELECT count(*) AS requests FROM task_assignment WHERE task_type = 'other'
