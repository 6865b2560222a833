-- name: leakage_pairs
-- params: examples, threshold
-- description: `leak_pairs`: eval x train candidates of the sensitive check banding on the written
--   records' text (a shared band key), without the pairs whose set sizes cannot reach `threshold`;
--   positions count records in file order within each split. Only the band keys some eval record
--   holds are joined (at 1 M: 4,500 eval records' 144k keys among 23.2 M; joining every key with
--   its split took 3.4-3.7 s, this 1.4 s, the same pairs).
CREATE TABLE leak_pairs AS
WITH side AS (
    SELECT uid, split, leak_n AS n, row_number() OVER (PARTITION BY split ORDER BY rel, line) - 1 AS position
    FROM placed
),
eval_keys AS (
    SELECT DISTINCT unnest(x.leak_bands) AS band_key
    FROM read_parquet($examples) x SEMI JOIN (SELECT uid FROM placed WHERE split = 'eval') e USING (uid)
),
band AS (
    SELECT b.uid, b.band_key, p.split
    FROM (SELECT uid, unnest(leak_bands) AS band_key FROM read_parquet($examples)) b
    SEMI JOIN eval_keys USING (band_key)
    JOIN placed p USING (uid)
),
pairs AS (
    SELECT DISTINCT e.uid AS i, t.uid AS j
    FROM band e JOIN band t ON e.band_key = t.band_key AND e.split = 'eval' AND t.split = 'train'
)
SELECT p.i, p.j, a.n AS ni, b.n AS nj, a.position AS eval_index, b.position AS train_index
FROM pairs p JOIN side a ON a.uid = p.i JOIN side b ON b.uid = p.j
WHERE greatest(a.n, b.n) = 0 OR least(a.n, b.n) >= $threshold * greatest(a.n, b.n)
