-- name: tasks_tool_sets
-- params: min_rows
-- description: The input of the split by tool set: the requests of the groups that could split
--   (at least $min_rows requests and two tool sets; a set is the sorted tool names, none counting as
--   one), with their tool set, time and session, in request order. Most groups have one tool set,
--   and their requests never leave DuckDB. Reads TEMP TABLEs request_groups and features.
WITH grouped AS (
    SELECT g.request_id, g.grp, epoch_ms(f.ts) AS ts_ms, f.session_id, f.tool_names_key
    FROM request_groups g
    JOIN features f USING (request_id)
),
candidates AS (
    SELECT grp
    FROM grouped
    GROUP BY grp
    HAVING count(*) >= $min_rows AND count(DISTINCT coalesce(tool_names_key, '')) >= 2
)
SELECT request_id, grp, ts_ms, session_id, tool_names_key
FROM grouped
WHERE grp IN (SELECT grp FROM candidates)
ORDER BY request_id
