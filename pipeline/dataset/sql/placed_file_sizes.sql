-- name: placed_file_sizes
-- params: -
-- description: Each JSONL file's records and bytes.
SELECT rel, count(*) AS records, sum(record_bytes) AS bytes FROM placed GROUP BY rel
