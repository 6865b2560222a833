-- name: candidate_chunk_sets
-- params: -
-- description: The shingle-hash sets of the examples in one chunk of candidate pairs (`pairs`,
--   registered from Arrow).
SELECT uid, hashes FROM cand_sets WHERE uid IN (SELECT i FROM pairs UNION ALL SELECT j FROM pairs)
