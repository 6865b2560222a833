-- name: request_examples_table
-- params: requests
-- description: Which examples each surviving request is part of.
CREATE TABLE req_ex AS
SELECT request_id, unnest(example_uids) AS uid
FROM read_parquet($requests)
WHERE example_uids IS NOT NULL
