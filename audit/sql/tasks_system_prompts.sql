-- name: tasks_system_prompts
-- params: mask_pattern
-- description: The one definition of a request's system prompt, one row per distinct form it was
--   sent in: `system_text` trimmed, or when that is blank a leading system/developer message left
--   inside `messages` by a source format. Forms are keyed by the hash of `system_text`
--   (`text_key`; DuckDB hashes a Parquet dictionary once per distinct value, not once per request)
--   and, only for a blank `system_text`, the hash of that message (`message_key`, else NULL), so
--   trimming, masking (dynamic spans -> '#', lower case, whitespace collapsed) and the
--   fingerprint run once per distinct text. Reads the `requests` view (a date partition).
WITH texts AS (
    SELECT
        hash(system_text) AS text_key,
        any_value(system_text) AS system_text,
        count(*) AS requests,
        min(ts) AS first_seen,
        max(ts) AS last_seen
    FROM requests
    GROUP BY 1
),
stand_ins AS (
    SELECT
        hash(system_text) AS text_key,
        hash(CASE WHEN messages[1].role IN ('system', 'developer') THEN messages[1].content END) AS message_key,
        any_value(CASE WHEN messages[1].role IN ('system', 'developer') THEN messages[1].content END) AS system_text,
        count(*) AS requests,
        min(ts) AS first_seen,
        max(ts) AS last_seen
    FROM requests
    -- blank: a filter of the scan, so `messages` is decoded only where it holds (ltrim is cheap;
    -- DuckDB's rtrim walks the whole string)
    WHERE system_text IS NULL OR ltrim(system_text) = ''
    GROUP BY 1, 2
),
forms AS (
    SELECT text_key, NULL::UBIGINT AS message_key, system_text, requests, first_seen, last_seen
    FROM texts
    WHERE ltrim(system_text) <> ''
    UNION ALL
    SELECT * FROM stand_ins
),
trimmed AS (  -- trim(): rtrim only where a space ends the text (the same result)
    SELECT * REPLACE (nullif(CASE WHEN ends_with(system_text, ' ') THEN trim(system_text) ELSE ltrim(system_text) END,
                             '') AS system_text)
    FROM forms
),
collapsed AS (
    SELECT
        raw_hash,
        system_text,
        -- whitespace runs -> one space; matching only runs and non-space whitespace (not every
        -- single space, as \s+ would) is the same result at a fraction of the cost
        regexp_replace(regexp_replace(lower(system_text), $mask_pattern, '#', 'g'), '\s\s+|[\t\n\r\f\v]', ' ', 'g')
            AS masked
    FROM (SELECT hash(system_text) AS raw_hash, any_value(system_text) AS system_text
          FROM trimmed WHERE system_text IS NOT NULL GROUP BY 1)
),
masked AS (
    SELECT raw_hash, system_text, CASE WHEN ends_with(masked, ' ') THEN trim(masked) ELSE ltrim(masked) END AS system_masked
    FROM collapsed
)
SELECT
    t.text_key,
    t.message_key,
    m.raw_hash,
    md5(m.system_masked)[1:16] AS system_fp,
    m.system_masked,
    m.system_text,
    t.requests,
    t.first_seen,
    t.last_seen
FROM trimmed t
JOIN masked m ON m.raw_hash = hash(t.system_text)
