-- name: tasks_assignment
-- params: other_label
-- description: task_assignment: every request of `features` with its task type, label and basis;
--   requests the clustering did not place (groups below the size floor, or no group) are `other`.
--   Reads TEMP TABLEs features, request_groups and task_groups (the typed groups).
SELECT
    f.request_id,
    coalesce(t.task_type, 'other') AS task_type,
    coalesce(t.task_label, $other_label) AS task_label,
    coalesce(t.basis, 'other') AS basis
FROM features f
LEFT JOIN request_groups g USING (request_id)
LEFT JOIN task_groups t USING (grp)
