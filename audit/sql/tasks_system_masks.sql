-- name: tasks_system_masks
-- params: -
-- description: The masked text of each system-prompt fingerprint of a date partition (one text
--   per fingerprint: it is the text's md5). Reads TEMP TABLE system_prompts.
SELECT system_fp, any_value(system_masked) AS system_masked
FROM system_prompts
GROUP BY system_fp
ORDER BY system_fp
