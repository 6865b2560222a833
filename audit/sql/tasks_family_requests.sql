-- name: tasks_family_requests
-- params: -
-- description: Every request whose system prompt belongs to a stable family, with its family and
--   user skeleton. Reads TEMP TABLEs features, fp_family and user_skeletons.
SELECT f.request_id, ff.family, s.user_skeleton_fp
FROM features f
JOIN fp_family ff ON ff.system_fp = f.system_fp
LEFT JOIN user_skeletons s USING (request_id)
WHERE ff.family IS NOT NULL
