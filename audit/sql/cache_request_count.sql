-- name: cache_request_count
-- params: -
-- description: How many requests the dynamic-span and prepare passes read (their number of tasks).
SELECT count(*) AS requests
FROM requests
