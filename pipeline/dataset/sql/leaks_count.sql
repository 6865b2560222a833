-- name: leaks_count
-- params: -
-- description: How many eval-train pairs reached the leakage threshold.
SELECT count(*) AS pairs FROM leaks
