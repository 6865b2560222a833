-- name: tasks_assignment
-- params: other_label
-- description: task_assignment: every request of `features` with its task type, label and basis;
--   requests the clustering did not place (groups below the size floor) are `other`. Reads
--   TEMP TABLE features and the registered view task_assignment_view.
SELECT
    f.request_id,
    coalesce(a.task_type, 'other') AS task_type,
    coalesce(a.task_label, $other_label) AS task_label,
    coalesce(a.basis, 'other') AS basis
FROM features f
LEFT JOIN task_assignment_view a USING (request_id)
