-- name: existing_keys
-- params: previous
-- description: Keys of rows already in the store whose base id collides with a staged row.
CREATE TEMP TABLE existing_keys AS
SELECT split_part(request_id, '~', 1) AS base_id, request_id,
       record_fp(source_format, response_id, ts, model, response_text, messages) AS _fp
FROM read_parquet($previous, hive_partitioning = false, union_by_name = true)
WHERE split_part(request_id, '~', 1) IN (SELECT DISTINCT request_id FROM staged_keys);
