-- name: tasks_family_templates
-- params: -
-- description: Requests per (system-prompt family, user skeleton) with the skeleton's template
--   line hashes, to decide whether a family serves several user templates, family by family (in
--   a fixed order). Reads TEMP TABLEs features, fp_family (system_fp -> family of a stable family)
--   and user_skeletons.
SELECT
    ff.family,
    s.user_skeleton_fp,
    count(*) AS requests,
    any_value(s.template_line_hashes) AS template_line_hashes
FROM features f
JOIN fp_family ff ON ff.system_fp = f.system_fp
LEFT JOIN user_skeletons s USING (request_id)
WHERE ff.family IS NOT NULL
GROUP BY ALL
ORDER BY family, user_skeleton_fp
