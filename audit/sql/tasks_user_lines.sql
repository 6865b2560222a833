-- name: tasks_user_lines
-- params: min_line_chars
-- description: The lines of each request's masked first user message that may be template text,
--   as hashes, in order: templates frame their slots, so only the first 12 and last 4 lines are
--   read (bounds the work on pasted documents), and lines shorter than $min_line_chars (trimmed)
--   never count. Pure per request: runs per date partition. Reads TEMP TABLE features; `trimmed`:
--   tasks_macros.sql.
SELECT f.request_id, f.first_user_hash AS message_hash, t.line.h AS line_hash, t.line.c AS chars, t.pos
FROM (
    SELECT
        request_id,
        first_user_hash,
        list_transform(
            list_filter(list_transform(CASE WHEN len(l) > 16 THEN list_concat(l[1:12], l[-4:]) ELSE l END,
                                       lambda x: trimmed(x)),
                        lambda x: length(x) >= $min_line_chars),
            lambda x: {'h': hash(x), 'c': length(x)}
        ) AS hashed
    FROM (SELECT request_id, first_user_hash, string_split(first_user_masked, chr(10)) AS l FROM features)
) f, unnest(f.hashed) WITH ORDINALITY AS t(line, pos)
