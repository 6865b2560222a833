-- name: candidate_pairs_ordered
-- params: -
-- description: The candidate pairs to verify, ordered by their left example (a chunk of them then
--   needs few distinct sets).
SELECT i, j, ni, nj FROM cand_pairs ORDER BY i, j
