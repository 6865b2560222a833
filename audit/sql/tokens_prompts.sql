-- name: tokens_prompts
-- params: limit
-- description: The prompt columns tokenization reads, in store order (date partitions, oldest first; $limit < 0: every request). No ORDER BY: a top-N sort over the whole store holds N prompts in memory (50,000 at 1 M requests overran DuckDB's 1 GB), while the store's own order is already by date.
SELECT provider, model, system_text, messages, tools_json
FROM requests
LIMIT CASE WHEN $limit < 0 THEN NULL ELSE $limit END
