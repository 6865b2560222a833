-- name: cache_mask_candidates
-- params: k
-- description: What the dynamic-span pass reads: each distinct combination of tools, system and the
--   history messages it looks at, which are the first $k messages up to the last assistant message
--   (the messages after it are the new turn, never masked). Only the fields that make a block
--   (role, text parts, name, tool call id) are kept, so the turns of one conversation and the first
--   turns sharing a system prompt collapse into one row: the pass's result is a set (which masked
--   texts vary), so repeats add nothing (250k requests: 44.5k rows).
WITH candidates AS (
    SELECT
        provider, system_text, tools_json, messages,
        coalesce(len(messages) + 1
                 - list_position(list_reverse(list_transform(messages, lambda m: m.role)), 'assistant'), 0)
            AS last_assistant
    FROM requests
)
SELECT DISTINCT
    provider, system_text, tools_json,
    list_transform(list_slice(messages, 1, least($k, last_assistant)), lambda m: {
        'role': m.role, 'content': m.content, 'parts_json': m.parts_json, 'tool_calls': m.tool_calls,
        'name': m.name, 'tool_call_id': m.tool_call_id}) AS messages,
    least($k, last_assistant) AS last_assistant
FROM candidates
