-- name: tasks_content_requests
-- params: -
-- description: Requests WITHOUT a stable system prompt, typed by content: the document is the
--   masked system prompt (if any) + the masked first user message. Reads `features`, TEMP TABLEs
--   fp_family, prompt_masks and user_skeletons.
SELECT
    f.request_id,
    f.session_id,
    s.user_skeleton_fp,
    coalesce(sp.system_masked || chr(10), '') || f.first_user_masked AS doc
FROM features f
LEFT JOIN fp_family ff ON ff.system_fp = f.system_fp
LEFT JOIN (SELECT system_fp, any_value(system_masked) AS system_masked FROM prompt_masks GROUP BY 1) sp
       ON sp.system_fp = f.system_fp
LEFT JOIN user_skeletons s USING (request_id)
WHERE ff.family IS NULL
