-- name: tasks_versions
-- params: min_requests
-- description: System-prompt versions per task type (masked variants with at least
--   $min_requests requests), in order of first appearance. Reads TEMP TABLEs task_assignment
--   and features.
SELECT
    a.task_type,
    f.system_fp,
    count(*) AS requests,
    min(f.ts) AS first_seen,
    max(f.ts) AS last_seen
FROM task_assignment a
JOIN features f USING (request_id)
WHERE f.system_fp IS NOT NULL AND a.basis LIKE 'system_prompt%'
GROUP BY ALL
HAVING count(*) >= $min_requests
ORDER BY a.task_type, min(f.ts), f.system_fp
