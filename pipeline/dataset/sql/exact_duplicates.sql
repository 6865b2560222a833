-- name: exact_duplicates
-- params: -
-- description: Examples with the same normalized-text key: all but the representative (positively
--   rated first, then the most recent, then the request id) are duplicates of it.
INSERT INTO dup
SELECT uid, 'duplicate', best_uid, 1.0
FROM (
    SELECT uid,
           first_value(uid) OVER (PARTITION BY exact_key ORDER BY rank_positive, rank_ts, final_request_id) AS best_uid,
           count(*) OVER (PARTITION BY exact_key) AS copies
    FROM ex
)
WHERE copies > 1 AND uid <> best_uid
