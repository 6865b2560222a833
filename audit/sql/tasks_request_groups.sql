-- name: tasks_request_groups
-- params: -
-- description: Every request whose system prompt belongs to a stable family, with its group: the
--   family, or the family's user-template sub-group where the family is split by template
--   (TEMP TABLE family_splits: a row per large template, and a row with a NULL skeleton for the
--   family's other requests). `split` says which. Reads TEMP TABLEs features, fp_family,
--   user_skeletons and family_splits.
SELECT
    f.request_id,
    coalesce(s.grp, w.grp, ff.family) AS grp,
    coalesce(s.grp, w.grp) IS NOT NULL AS split
FROM features f
JOIN fp_family ff ON ff.system_fp = f.system_fp
LEFT JOIN user_skeletons k USING (request_id)
LEFT JOIN family_splits s ON s.family = ff.family AND s.skeleton = k.user_skeleton_fp
LEFT JOIN family_splits w ON w.family = ff.family AND w.skeleton IS NULL
WHERE ff.family IS NOT NULL
