-- name: tasks_system_prompts
-- params: mask_pattern
-- description: Distinct system prompts as sent, each with its masked form (dynamic spans -> '#',
--   lower case, whitespace collapsed) and fingerprint. Masking runs once per distinct raw text,
--   not once per request. A leading system/developer message left inside `messages` by a source
--   format counts as the system prompt when `system_text` is empty.
WITH sent AS (
    SELECT
        ts,
        coalesce(nullif(trim(system_text), ''),
                 CASE WHEN messages[1].role IN ('system', 'developer') THEN nullif(trim(messages[1].content), '') END)
            AS system_text
    FROM requests
),
raw AS (
    SELECT
        hash(system_text) AS raw_hash,
        any_value(system_text) AS system_text,
        count(*) AS requests,
        min(ts) AS first_seen,
        max(ts) AS last_seen
    FROM sent
    WHERE system_text IS NOT NULL
    GROUP BY 1
),
masked AS (
    SELECT
        *,
        -- whitespace runs -> one space; matching only runs and non-space whitespace (not every
        -- single space, as \s+ would) is the same result at a fraction of the cost
        trim(regexp_replace(regexp_replace(lower(system_text), $mask_pattern, '#', 'g'), '\s\s+|[\t\n\r\f\v]', ' ', 'g'))
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
