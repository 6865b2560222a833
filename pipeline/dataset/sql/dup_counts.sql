-- name: dup_counts
-- params: -
-- description: Dropped duplicates per reason (`duplicate`, `near_duplicate`).
SELECT reason, count(*) AS examples FROM dup GROUP BY reason
