-- name: status_missing
-- params: -
-- description: Requests without an outcome (must be none) and the first of them, for the message.
SELECT count(*) AS requests, min(request_id) AS first_request_id FROM status WHERE status IS NULL
