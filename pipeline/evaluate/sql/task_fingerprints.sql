-- name: task_fingerprints
-- params: labels
-- description: Per task type, the system-prompt fingerprints (masked system prompt, one per
--   prompt version) and tool-set fingerprints its requests carried, most requests first.
SELECT task_type, system_fp, tools_fp, count(*) AS requests
FROM read_parquet($labels)
WHERE system_fp IS NOT NULL
GROUP BY task_type, system_fp, tools_fp
ORDER BY task_type, requests DESC, system_fp, tools_fp NULLS FIRST
