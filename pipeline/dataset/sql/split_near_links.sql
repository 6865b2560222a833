-- name: split_near_links
-- params: threshold
-- description: Verified candidates at or above the split-group threshold between two kept examples.
SELECT a.idx AS i, b.idx AS j
FROM cand c JOIN ex a ON a.uid = c.i JOIN ex b ON b.uid = c.j
WHERE c.jaccard >= $threshold
  AND (greatest(c.ni, c.nj) = 0 OR least(c.ni, c.nj) >= $threshold * greatest(c.ni, c.nj))
  AND c.i NOT IN (SELECT uid FROM dup) AND c.j NOT IN (SELECT uid FROM dup)
