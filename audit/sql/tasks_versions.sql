-- name: tasks_versions
-- params: min_requests
-- description: System-prompt versions per task type: masked variants with at least
--   $min_requests requests, and always the type's most used one (a prompt whose unmasked dynamic
--   text makes every variant small still has a version), in order of first appearance. Reads
--   TEMP TABLEs task_assignment and features.
WITH variants AS (
    SELECT
        a.task_type,
        f.system_fp,
        count(*) AS requests,
        min(f.ts) AS first_seen,
        max(f.ts) AS last_seen
    FROM task_assignment a
    JOIN features f USING (request_id)
    WHERE f.system_fp IS NOT NULL AND a.basis LIKE 'system_prompt%'
    GROUP BY a.task_type, f.system_fp
)
SELECT task_type, system_fp, requests, first_seen, last_seen
FROM variants
QUALIFY requests >= $min_requests
     OR row_number() OVER (PARTITION BY task_type ORDER BY requests DESC, system_fp) = 1
ORDER BY task_type, first_seen, system_fp
