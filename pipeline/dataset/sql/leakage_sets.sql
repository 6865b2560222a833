-- name: leakage_sets
-- params: examples
-- description: `leak_sets`: the shingle-hash sets of the written records in `leak_pairs`.
CREATE TABLE leak_sets AS
SELECT h.uid, coalesce(h.leak_hashes, h.hashes) AS hashes
FROM read_parquet($examples) h SEMI JOIN (SELECT i AS uid FROM leak_pairs UNION SELECT j FROM leak_pairs) s
    ON s.uid = h.uid
