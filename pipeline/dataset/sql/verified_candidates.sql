-- name: verified_candidates
-- params: -
-- description: `cand`: the candidate pairs whose exact Jaccard reached the lower of the dedup and
--   split-group thresholds (filled by `verified_candidates_insert`), with their set sizes.
CREATE TABLE cand (i BIGINT, j BIGINT, ni INTEGER, nj INTEGER, jaccard DOUBLE)
