-- name: tasks_partition_features
-- params: min_type_requests
-- description: A date partition's `features` as its task hands them to the merge. The masked
--   first user message (the bulk of the bytes) is kept only where typing by content may read it:
--   a request whose system-prompt fingerprint has $min_type_requests requests in this partition
--   alone belongs to a stable family whatever the other partitions hold (a family counts the
--   requests of all its fingerprints), so it is never typed by content. `first_user_chars` keeps
--   the length. Reads TEMP TABLEs features and system_prompts.
SELECT * REPLACE (
    CASE WHEN system_fp IN (SELECT system_fp FROM system_prompts GROUP BY 1 HAVING sum(requests) >= $min_type_requests)
         THEN NULL ELSE first_user_masked END AS first_user_masked
)
FROM features
