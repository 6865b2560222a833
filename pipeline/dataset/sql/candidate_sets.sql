-- name: candidate_sets
-- params: examples
-- description: `cand_sets`: the shingle-hash sets of the examples in `cand_pairs`.
CREATE TABLE cand_sets AS
SELECT h.uid, h.hashes
FROM read_parquet($examples) h SEMI JOIN (SELECT i AS uid FROM cand_pairs UNION SELECT j FROM cand_pairs) s
    ON s.uid = h.uid
