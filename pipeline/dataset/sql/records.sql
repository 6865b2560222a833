-- name: records
-- params: examples
-- description: The JSONL lines in file order.
SELECT p.rel, x.record
FROM placed p JOIN read_parquet($examples) x USING (uid)
ORDER BY p.rel, p.line
