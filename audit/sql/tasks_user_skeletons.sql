-- name: tasks_user_skeletons
-- params: min_line_messages
-- description: The user-message skeleton: the lines of each masked first user message that recur
--   in at least $min_line_messages DIFFERENT messages (template text; the slots vary), in order.
--   Counting distinct messages, not requests, keeps one conversation's repeated turns and
--   verbatim duplicate questions from passing as a template. Reads `user_lines`
--   (tasks_user_lines.sql, every date partition's).
WITH template_hashes AS (
    SELECT line_hash
    FROM (SELECT DISTINCT line_hash, message_hash FROM user_lines)
    GROUP BY line_hash
    HAVING count(*) >= $min_line_messages
)
SELECT
    l.request_id,
    md5(array_to_string(list(CAST(l.line_hash AS VARCHAR) ORDER BY l.pos), ','))[1:16] AS user_skeleton_fp,
    list(DISTINCT l.line_hash) AS template_line_hashes,
    sum(l.chars) AS template_chars
FROM user_lines l
JOIN template_hashes USING (line_hash)
GROUP BY l.request_id
