-- name: tasks_user_skeletons
-- params: min_line_messages, min_line_chars
-- description: The user-message skeleton: the lines of each masked first user message that recur
--   in at least $min_line_messages DIFFERENT messages (template text; the slots vary), in order.
--   Counting distinct messages, not requests, keeps one conversation's repeated turns and
--   verbatim duplicate questions from passing as a template. Templates frame their slots, so
--   only the first 12 and last 4 lines of a message are read (bounds the work on pasted
--   documents), and lines travel as hashes.
WITH lines AS (
    SELECT f.request_id, f.first_user_hash AS message_hash, t.line.h AS line_hash, t.line.c AS chars, t.pos
    FROM (
        SELECT
            request_id,
            first_user_hash,
            list_transform(
                list_filter(CASE WHEN len(l) > 16 THEN list_concat(l[1:12], l[-4:]) ELSE l END,
                            lambda x: length(trim(x)) >= $min_line_chars),
                lambda x: {'h': hash(trim(x)), 'c': length(trim(x))}
            ) AS hashed
        FROM (SELECT request_id, first_user_hash, string_split(first_user_masked, chr(10)) AS l FROM features)
    ) f, unnest(f.hashed) WITH ORDINALITY AS t(line, pos)
),
template_hashes AS (
    SELECT line_hash
    FROM (SELECT DISTINCT line_hash, message_hash FROM lines)
    GROUP BY line_hash
    HAVING count(*) >= $min_line_messages
)
SELECT
    l.request_id,
    md5(array_to_string(list(CAST(l.line_hash AS VARCHAR) ORDER BY l.pos), ','))[1:16] AS user_skeleton_fp,
    list(DISTINCT l.line_hash) AS template_line_hashes,
    sum(l.chars) AS template_chars
FROM lines l
JOIN template_hashes USING (line_hash)
GROUP BY l.request_id
