-- name: tasks_user_skeletons
-- params: min_line_messages, min_line_chars
-- description: The user-message skeleton: the lines of each masked first user message that recur
--   in at least $min_line_messages DIFFERENT messages (template text; the slots vary), in order.
--   Counting distinct messages, not requests, keeps one conversation's repeated turns and
--   verbatim duplicate questions from passing as a template (HyperLogLog count: exact at the
--   small counts the threshold compares, cheap at large ones).
WITH lines AS (
    SELECT f.request_id, f.first_user_hash AS message_hash, t.pos, trim(t.line) AS line
    FROM (
        -- templates frame their slots: the first 12 and last 4 lines carry them (bounds the work
        -- on long pasted documents)
        SELECT request_id, first_user_hash,
               CASE WHEN len(l) > 16 THEN list_concat(l[1:12], l[-4:]) ELSE l END AS lines
        FROM (SELECT request_id, first_user_hash, string_split(first_user_masked, chr(10)) AS l FROM features)
    ) f, unnest(f.lines) WITH ORDINALITY AS t(line, pos)
    WHERE length(trim(t.line)) >= $min_line_chars
),
line_df AS (
    SELECT hash(line) AS line_hash, approx_count_distinct(message_hash) AS messages
    FROM lines
    GROUP BY 1
),
template_lines AS (
    SELECT l.request_id, l.pos, hash(l.line) AS line_hash, length(l.line) AS chars
    FROM lines l
    JOIN line_df d ON d.line_hash = hash(l.line)
    WHERE d.messages >= $min_line_messages
)
SELECT
    request_id,
    md5(array_to_string(list(CAST(line_hash AS VARCHAR) ORDER BY pos), ','))[1:16] AS user_skeleton_fp,
    list(DISTINCT line_hash) AS template_line_hashes,
    sum(chars) AS template_chars
FROM template_lines
GROUP BY request_id
