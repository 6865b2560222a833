-- name: placed_table
-- params: per_task, eval_groups
-- description: Where every kept example is written: its split (eval when its group, from `group_of`
--   or the example alone, is one of `eval_groups`), its file (relative to the dataset folder), its
--   1-based line (files ordered by task type, time and request id) and the byte offset of that
--   line, so records can be written in any order without sorting them.
CREATE TABLE placed AS
WITH kept AS (
    SELECT e.*, CASE WHEN coalesce(g.grp, e.idx) IN (SELECT unnest($eval_groups)) THEN 'eval' ELSE 'train' END AS split
    FROM ex e
    LEFT JOIN group_of g USING (idx)
    WHERE e.uid NOT IN (SELECT uid FROM dup)
),
filed AS (
    SELECT *, CASE WHEN $per_task THEN 'tasks/' || slug || '/' || split || '.jsonl' ELSE split || '.jsonl' END AS rel
    FROM kept
),
lined AS (
    SELECT uid, idx, split, rel, slug, task_type, ts, final_request_id, tokens, assistant_tokens, leak_n, record_bytes,
           row_number() OVER (PARTITION BY rel ORDER BY task_type, sort_ts, final_request_id) AS line
    FROM filed
)
SELECT *, (sum(record_bytes) OVER (PARTITION BY rel ORDER BY line ROWS UNBOUNDED PRECEDING) - record_bytes)::BIGINT AS byte_offset
FROM lined
