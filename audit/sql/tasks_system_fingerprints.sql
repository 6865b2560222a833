-- name: tasks_system_fingerprints
-- params: -
-- description: One row per masked system prompt (= prompt version): its masked text, its requests
--   and its example: the prompt sent most often (ties: the earliest, then the smallest hash), with
--   the first date partition that holds it (its text is read back there); most used first. Merges
--   every date partition's forms (`prompt_forms`) and masked texts (`prompt_masks`).
WITH prompts AS (
    SELECT
        raw_hash,
        any_value(system_fp) AS system_fp,
        sum(requests) AS requests,
        min(first_seen) AS first_seen,
        min(partition) AS partition
    FROM prompt_forms
    GROUP BY raw_hash
)
SELECT
    p.system_fp,
    any_value(m.system_masked) AS system_masked,
    first(p.raw_hash ORDER BY p.requests DESC, p.first_seen, p.raw_hash) AS example_hash,
    first(p.partition ORDER BY p.requests DESC, p.first_seen, p.raw_hash) AS example_partition,
    sum(p.requests) AS requests
FROM prompts p
JOIN (SELECT system_fp, any_value(system_masked) AS system_masked FROM prompt_masks GROUP BY 1) m USING (system_fp)
GROUP BY p.system_fp
ORDER BY requests DESC, p.system_fp
