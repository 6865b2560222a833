-- name: tasks_system_prompts
-- params: mask_pattern
-- description: Distinct system prompts as sent, each with its masked form (dynamic spans -> '#',
--   lower case, whitespace collapsed) and fingerprint. Masking runs once per distinct raw text,
--   not once per request.
WITH raw AS (
    SELECT
        hash(system_text) AS raw_hash,
        any_value(system_text) AS system_text,
        count(*) AS requests,
        min(ts) AS first_seen,
        max(ts) AS last_seen
    FROM requests
    WHERE nullif(trim(system_text), '') IS NOT NULL
    GROUP BY 1
),
masked AS (
    SELECT
        *,
        trim(regexp_replace(regexp_replace(lower(system_text), $mask_pattern, '#', 'g'), '\s+', ' ', 'g'))
            AS system_masked
    FROM raw
)
SELECT
    raw_hash,
    md5(system_masked)[1:16] AS system_fp,
    system_masked,
    system_text,
    requests,
    first_seen,
    last_seen
FROM masked
