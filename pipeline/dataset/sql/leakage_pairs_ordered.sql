-- name: leakage_pairs_ordered
-- params: -
-- description: The eval-train candidate pairs to verify, ordered by their left record.
SELECT i, j, ni, nj, eval_index, train_index FROM leak_pairs ORDER BY i, j
