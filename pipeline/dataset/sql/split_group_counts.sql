-- name: split_group_counts
-- params: -
-- description: How many split groups there are and the size of the largest (0 without groups).
SELECT count(*) AS groups, coalesce(max(size), 0) AS largest FROM groups
