-- name: tasks_system_fingerprints
-- params: -
-- description: One row per masked system prompt (= prompt version): its masked text, the raw text
--   sent most often, and its requests; most used first. Reads TEMP TABLE system_prompts.
SELECT
    system_fp,
    any_value(system_masked) AS system_masked,
    arg_max(system_text, requests) AS example_text,
    sum(requests) AS requests
FROM system_prompts
GROUP BY system_fp
ORDER BY requests DESC, system_fp
