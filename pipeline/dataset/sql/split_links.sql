-- name: split_links
-- params: -
-- description: Links that put kept examples into one split group: the same session, the same
--   normalized last prompt (each member linked to the first of its key). `kind`: 0 session, 1 prompt.
WITH kept AS (SELECT * FROM ex WHERE uid NOT IN (SELECT uid FROM dup))
SELECT 0::TINYINT AS kind, idx AS i, min(idx) OVER (PARTITION BY session_id) AS j
FROM kept WHERE session_id IS NOT NULL AND session_id <> ''
QUALIFY i <> j
UNION ALL
SELECT 1::TINYINT, idx, min(idx) OVER (PARTITION BY prompt_key)
FROM kept WHERE prompt_key IS NOT NULL
QUALIFY idx <> min(idx) OVER (PARTITION BY prompt_key)
