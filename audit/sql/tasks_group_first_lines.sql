-- name: tasks_group_first_lines
-- params: groups
-- description: The most common first line of the first user message per group (labels of
--   user-template and content groups). Reads TEMP TABLEs features and request_groups.
SELECT g.grp, mode(f.first_user_line ORDER BY f.first_user_line) AS first_line
FROM request_groups g
JOIN features f USING (request_id)
WHERE g.grp IN (SELECT unnest($groups)) AND nullif(f.first_user_line, '') IS NOT NULL
GROUP BY 1
