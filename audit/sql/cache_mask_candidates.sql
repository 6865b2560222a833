-- name: cache_mask_candidates
-- params: k
-- description: What the dynamic-span pass reads: tools, system and the first $k messages, with the
--   1-based position of the last assistant message (messages after it are the new turn, which is
--   never masked). Reading only these keeps the pass cheap on long conversations.
SELECT
    provider, system_text, tools_json,
    list_slice(messages, 1, $k) AS messages,
    coalesce(len(messages) + 1
             - list_position(list_reverse(list_transform(messages, lambda m: m.role)), 'assistant'), 0)
        AS last_assistant
FROM requests
