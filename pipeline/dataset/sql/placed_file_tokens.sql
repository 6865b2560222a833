-- name: placed_file_tokens
-- params: rel
-- description: The token count of each record of one JSONL file, in line order.
SELECT tokens FROM placed WHERE rel = $rel ORDER BY line
