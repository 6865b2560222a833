-- name: leakage_pairs
-- params: examples, threshold
-- description: `leaks`: eval records with a train record at exact Jaccard >= threshold, as written (shingles of
--   the records' user/assistant text): candidates share a band of the sensitive check banding.
--   Positions count records in file order within each split.
CREATE TABLE leaks AS
WITH side AS (
    SELECT uid, split, leak_n AS n, row_number() OVER (PARTITION BY split ORDER BY rel, line) - 1 AS position
    FROM placed
),
band AS (
    SELECT s.uid, s.split, unnest(x.leak_bands) AS band_key
    FROM read_parquet($examples) x JOIN side s USING (uid)
),
pairs AS (
    SELECT DISTINCT e.uid AS q, t.uid AS x
    FROM band e JOIN band t ON e.band_key = t.band_key AND e.split = 'eval' AND t.split = 'train'
),
sized AS (
    SELECT p.q, p.x, a.n AS nq, b.n AS nx, a.position AS eval_index, b.position AS train_index
    FROM pairs p JOIN side a ON a.uid = p.q JOIN side b ON b.uid = p.x
    WHERE greatest(a.n, b.n) = 0 OR least(a.n, b.n) >= $threshold * greatest(a.n, b.n)
),
sets AS (
    SELECT h.uid, coalesce(h.leak_hashes, h.hashes) AS hashes
    FROM read_parquet($examples) h SEMI JOIN (SELECT q AS uid FROM sized UNION SELECT x FROM sized) s ON s.uid = h.uid
),
verified AS (
    SELECT s.*, len(list_intersect(a.hashes, b.hashes)) AS inter
    FROM sized s JOIN sets a ON a.uid = s.q JOIN sets b ON b.uid = s.x
)
SELECT eval_index, train_index,
       CASE WHEN least(nq, nx) = 0 THEN (CASE WHEN greatest(nq, nx) = 0 THEN 1.0 ELSE 0.0 END)
            ELSE inter / (nq + nx - inter) END AS jaccard
FROM verified
WHERE jaccard >= $threshold
