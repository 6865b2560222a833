-- name: tasks_tool_sets
-- params: -
-- description: Requests of stable system-prompt families with their tool set (sorted tool names),
--   time and session: the input of the split by tool set. Reads TEMP TABLEs features and fp_family.
SELECT f.request_id, epoch_ms(f.ts) AS ts_ms, f.session_id, f.tool_names_key
FROM features f
JOIN fp_family ff ON ff.system_fp = f.system_fp
WHERE ff.family IS NOT NULL
ORDER BY f.request_id
