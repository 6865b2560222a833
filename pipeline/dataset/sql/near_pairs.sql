-- name: near_pairs
-- params: threshold
-- description: Verified candidates at or above the near-duplicate threshold, as dense indices.
SELECT a.idx AS i, b.idx AS j, c.jaccard
FROM cand c JOIN ex a ON a.uid = c.i JOIN ex b ON b.uid = c.j
WHERE c.jaccard >= $threshold
  AND (greatest(c.ni, c.nj) = 0 OR least(c.ni, c.nj) >= $threshold * greatest(c.ni, c.nj))
