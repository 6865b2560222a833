-- name: candidate_pairs
-- params: examples, threshold
-- description: LSH candidates among the examples that are not exact duplicates (a shared band key),
--   verified by the exact Jaccard of their shingle-hash sets; pairs whose set sizes cannot reach
--   `threshold` are skipped before their sets are read.
CREATE TABLE cand AS
WITH alive AS (
    SELECT uid, n_hashes FROM ex WHERE uid NOT IN (SELECT uid FROM dup)
),
band AS (
    SELECT b.uid, unnest(b.bands) AS band_key
    FROM read_parquet($examples) b SEMI JOIN alive a ON a.uid = b.uid
),
pairs AS (
    SELECT DISTINCT x.uid AS i, y.uid AS j FROM band x JOIN band y ON x.band_key = y.band_key AND x.uid < y.uid
),
sized AS (
    SELECT p.i, p.j, a.n_hashes AS ni, b.n_hashes AS nj
    FROM pairs p JOIN alive a ON a.uid = p.i JOIN alive b ON b.uid = p.j
    WHERE greatest(a.n_hashes, b.n_hashes) = 0
       OR least(a.n_hashes, b.n_hashes) >= $threshold * greatest(a.n_hashes, b.n_hashes)
),
sets AS (
    SELECT h.uid, h.hashes FROM read_parquet($examples) h SEMI JOIN (SELECT i AS uid FROM sized UNION SELECT j FROM sized) s
        ON s.uid = h.uid
),
verified AS (
    SELECT s.i, s.j, s.ni, s.nj, len(list_intersect(a.hashes, b.hashes)) AS inter
    FROM sized s JOIN sets a ON a.uid = s.i JOIN sets b ON b.uid = s.j
)
SELECT i, j, ni, nj,
       CASE WHEN least(ni, nj) = 0 THEN (CASE WHEN greatest(ni, nj) = 0 THEN 1.0 ELSE 0.0 END)
            ELSE inter / (ni + nj - inter) END AS jaccard
FROM verified
WHERE jaccard >= $threshold
