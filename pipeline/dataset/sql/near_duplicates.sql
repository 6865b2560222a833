-- name: near_duplicates
-- params: threshold
-- description: In each cluster of near-duplicate pairs (`clusters`: idx -> cluster, registered from
--   the connected components), all but the representative are near-duplicates of it, with the
--   highest Jaccard they reached.
INSERT INTO dup
WITH members AS (
    SELECT e.uid, c.cluster,
           first_value(e.uid) OVER (PARTITION BY c.cluster ORDER BY e.rank_positive, e.rank_ts, e.final_request_id)
               AS best_uid
    FROM clusters c JOIN ex e ON e.idx = c.idx
),
pairs AS (
    SELECT i AS uid, jaccard, ni, nj FROM cand UNION ALL SELECT j, jaccard, ni, nj FROM cand
),
best_jaccard AS (
    SELECT uid, max(jaccard) AS jaccard
    FROM pairs
    WHERE jaccard >= $threshold AND (greatest(ni, nj) = 0 OR least(ni, nj) >= $threshold * greatest(ni, nj))
    GROUP BY uid
)
SELECT m.uid, 'near_duplicate', m.best_uid, coalesce(b.jaccard, 0.0)
FROM members m LEFT JOIN best_jaccard b USING (uid)
WHERE m.uid <> m.best_uid
