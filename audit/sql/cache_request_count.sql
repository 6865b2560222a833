-- name: cache_request_count
-- params: -
-- description: How many requests the prepare pass reads (its number of tasks).
SELECT count(*) AS requests
FROM requests
