-- name: leakage_chunk_sets
-- params: -
-- description: The shingle-hash sets of the records in one chunk of eval-train pairs (`pairs`,
--   registered from Arrow).
SELECT uid, hashes FROM leak_sets WHERE uid IN (SELECT i FROM pairs UNION ALL SELECT j FROM pairs)
