-- name: verified_candidates_insert
-- params: -
-- description: Appends one chunk of verified candidate pairs (`part`, registered from Arrow) to `cand`.
INSERT INTO cand SELECT i, j, ni, nj, jaccard FROM part
