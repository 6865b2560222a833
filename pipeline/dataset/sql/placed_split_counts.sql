-- name: placed_split_counts
-- params: -
-- description: Kept examples per split (`train`, `eval`).
SELECT split, count(*) AS examples FROM placed GROUP BY split
