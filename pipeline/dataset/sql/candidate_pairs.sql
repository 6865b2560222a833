-- name: candidate_pairs
-- params: examples, threshold
-- description: `cand_pairs`: LSH candidates among the examples that are not exact duplicates (pairs
--   sharing a band key), without the pairs whose set sizes cannot reach `threshold` (Jaccard <=
--   smaller / larger set), with their set sizes.
CREATE TABLE cand_pairs AS
WITH alive AS (
    SELECT uid, n_hashes FROM ex WHERE uid NOT IN (SELECT uid FROM dup)
),
band AS (
    SELECT b.uid, unnest(b.bands) AS band_key
    FROM read_parquet($examples) b SEMI JOIN alive a ON a.uid = b.uid
),
pairs AS (
    SELECT DISTINCT x.uid AS i, y.uid AS j FROM band x JOIN band y ON x.band_key = y.band_key AND x.uid < y.uid
)
SELECT p.i, p.j, a.n_hashes AS ni, b.n_hashes AS nj
FROM pairs p JOIN alive a ON a.uid = p.i JOIN alive b ON b.uid = p.j
WHERE greatest(a.n_hashes, b.n_hashes) = 0
   OR least(a.n_hashes, b.n_hashes) >= $threshold * greatest(a.n_hashes, b.n_hashes)
