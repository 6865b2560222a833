-- name: cache_request_count
-- params: -
-- description: How many requests the per-request preparation will read (the progress bar's total).
SELECT count(*) AS requests
FROM requests
