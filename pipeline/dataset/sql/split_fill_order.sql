-- name: split_fill_order
-- params: -
-- description: The split groups in the order they fill their task type's eval target: by task type,
--   then the seeded order key, then the smallest request id (ties).
SELECT grp, task, size FROM groups ORDER BY task, order_key, first_request_id
