-- name: eval_examples
-- params: lineage
-- description: The dataset's eval split: one row per eval example, in file and line order.
SELECT example_id, request_id, task_type, file, line
FROM read_parquet($lineage)
WHERE kind = 'example' AND split = 'eval'
ORDER BY file, line
