-- name: tasks_features
-- params: mask_pattern
-- description: One row per request: the fingerprint inputs of task typing (masked system prompt
--   fingerprint, tool set, masked first user message), the conversation state and turn texts the
--   signals use, and the figures task_types aggregates. The one pass over `messages`. Needs TEMP
--   TABLE system_prompts and `trimmed` (tasks_macros.sql); runs per date partition.
WITH base AS (
    SELECT
        r.request_id,
        r.ts,
        CAST(date_trunc('week', r.ts) AS DATE) AS week,
        r.model,
        r.user_id,
        r.session_id,
        r.parent_id,
        sp.system_fp,
        coalesce(sp.system_chars, 0) AS system_chars,
        list_sort(json_extract_string(r.tools_json, '$[*].name')) AS tool_names,
        list_filter(r.messages, lambda m: m.role = 'user')[1].content AS first_user_text,
        coalesce(len(r.messages), 0) AS n_messages,
        len(r.messages) + 1
            - list_position(list_reverse(list_transform(r.messages, lambda m: m.role)), 'user') AS last_user_pos,
        r.messages,
        hash(coalesce(r.parent_id, ''), coalesce(sp.system_fp, ''), coalesce(r.tools_json, ''), r.messages)
            AS state_hash,
        request_failed(r.finish_reason, r.error_type, r.status_code) AS failed,
        coalesce(r.n_choices, 1) > 1
            OR coalesce(TRY_CAST(json_extract_string(r.request_params, '$.n') AS INTEGER), 1) > 1 AS multi_choice,
        r.finish_reason,
        nullif(trimmed(r.response_text), '') IS NOT NULL AS has_text,
        coalesce(len(r.response_tool_calls), 0) > 0 AS is_tool_call,
        -- replies are matched to the history a later request resends: whitespace-insensitive hash
        CASE WHEN nullif(trimmed(r.response_text), '') IS NOT NULL
             THEN hash(replace(replace(replace(replace(r.response_text, ' ', ''), chr(10), ''), chr(9), ''), chr(13), ''))
        END AS reply_hash,
        -- the fence regex only where a fence can be (an end-anchored pattern scans the whole text)
        trimmed(CASE WHEN contains(r.response_text, '```')
                     THEN regexp_replace(trimmed(r.response_text), '^```[a-zA-Z]*\s*|\s*```$', '', 'g')
                     ELSE trimmed(coalesce(r.response_text, '')) END) AS answer_body,
        coalesce(r.in_uncached, 0) + coalesce(r.in_cache_read, 0) + coalesce(r.in_cache_write_5m, 0)
            + coalesce(r.in_cache_write_1h, 0) + coalesce(r.in_cache_write_unspecified, 0) AS input_tokens,
        coalesce(r.out_total, 0) AS output_tokens,
        r.feedback_score AS feedback_rating
    FROM requests r
    -- joined on the keys of the prompt's form (tasks_system_prompts.sql), which DuckDB hashes once
    -- per distinct value of the Parquet dictionary; only fixed-width columns on the build side
    LEFT JOIN (SELECT text_key, message_key, system_fp, length(system_masked) AS system_chars FROM system_prompts) sp
           ON sp.text_key = hash(r.system_text)
          AND (sp.message_key IS NULL
               OR sp.message_key = hash(CASE WHEN r.messages[1].role IN ('system', 'developer') THEN r.messages[1].content END))
),
unspaced AS (
    SELECT
        *,
        regexp_replace(lower(coalesce(first_user_text, '')), $mask_pattern, '#', 'g') AS user_masked
    FROM base
),
masked AS (
    SELECT
        * EXCLUDE (user_masked),
        -- whitespace runs and tabs -> one space; the regex only where one of them can be (fast scans)
        CASE WHEN contains(user_masked, '  ') OR contains(user_masked, chr(9)) OR contains(user_masked, chr(13))
                  OR contains(user_masked, chr(12)) OR contains(user_masked, chr(11))
             THEN regexp_replace(user_masked, '[ \t\r\f\v][ \t\r\f\v]+|[\t\r\f\v]', ' ', 'g')
             ELSE user_masked END AS first_user_masked
    FROM unspaced
)
SELECT
    * EXCLUDE (answer_body, tool_names, first_user_text, messages, last_user_pos),
    CASE WHEN len(tool_names) > 0 THEN md5(array_to_string(tool_names, chr(31)))[1:16] END AS tools_fp,
    -- the tool set as a set, in any order the client sent it (a schema edit under the same names is a
    -- new version of the same tools, so names are the key)
    CASE WHEN len(tool_names) > 0 THEN array_to_string(tool_names, chr(31)) END AS tool_names_key,
    -- the raw first user message is not kept (memory): its hash and first line are enough
    hash(first_user_text) AS first_user_hash,
    left(split_part(trimmed(first_user_text), chr(10), 1), 200) AS first_user_line,
    length(first_user_masked) AS first_user_chars,
    -- the user turn this request sends, and the assistant reply it follows (edit signal)
    CASE WHEN last_user_pos <= n_messages THEN messages[last_user_pos].content END AS last_user_text,
    CASE WHEN last_user_pos > 1 AND last_user_pos <= n_messages AND messages[last_user_pos - 1].role = 'assistant'
         THEN messages[last_user_pos - 1].content END AS history_reply,
    CASE WHEN last_user_pos > 1 AND last_user_pos <= n_messages AND messages[last_user_pos - 1].role = 'assistant'
         THEN hash(replace(replace(replace(replace(messages[last_user_pos - 1].content, ' ', ''), chr(10), ''),
                                   chr(9), ''), chr(13), '')) END AS history_reply_hash,
    -- succeeded: the call returned (maybe an empty, refused or truncated answer); answered: with content
    NOT failed AND (finish_reason IS NOT NULL OR has_text OR is_tool_call) AS succeeded,
    NOT failed AND (has_text OR is_tool_call) AS answered,
    has_text AND (answer_body LIKE '{%' OR answer_body LIKE '[%') AND json_valid(answer_body) AS answer_is_json,
    CASE WHEN has_text AND answer_body LIKE '{%' AND json_valid(answer_body)
         THEN array_to_string(list_sort(json_keys(answer_body)), chr(31)) END AS answer_keyset
FROM masked
