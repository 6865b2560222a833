-- name: store_end
-- params: -
-- description: The newest request time: the weekly comparison is anchored here, not at the wall clock.
SELECT max(ts) AS end_ts FROM requests
