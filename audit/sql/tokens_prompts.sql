-- name: tokens_prompts
-- params: limit
-- description: The prompt columns tokenization reads, in time order ($limit < 0: every request).
SELECT provider, model, system_text, messages, tools_json
FROM requests
ORDER BY ts NULLS LAST, request_id
LIMIT CASE WHEN $limit < 0 THEN NULL ELSE $limit END
