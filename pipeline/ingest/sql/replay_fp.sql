-- name: replay_fp
-- params: -
-- description: Identity of an API response that a transcript may record more than once under
--   different request ids: Claude Code writes a sub-agent's (or a /btw sidechain's) messages again in
--   another file (`subagents/agent-*.jsonl`) with a new `requestId` but the same `message.id` and
--   content (ccusage #913). Same message id + same response content = the same call, counted once.
CREATE OR REPLACE TEMP MACRO replay_fp(source_format, response_id, response_text, response_tool_calls, response_reasoning) AS
    CASE WHEN source_format = 'claude_code' AND response_id IS NOT NULL
         THEN md5(concat_ws('|', response_id, coalesce(response_text, ''),
                  coalesce(CAST(response_tool_calls AS VARCHAR), ''), coalesce(response_reasoning, ''))) END;
