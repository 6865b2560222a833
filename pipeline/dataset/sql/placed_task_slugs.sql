-- name: placed_task_slugs
-- params: -
-- description: Each per-task folder's slug with its task type (the latest example's, should two types
--   share a slug).
SELECT slug, last(task_type ORDER BY ts NULLS FIRST, final_request_id) AS task_type FROM placed GROUP BY slug
