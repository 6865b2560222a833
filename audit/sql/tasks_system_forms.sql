-- name: tasks_system_forms
-- params: -
-- description: What a date partition hands the merge about its system prompts, without their
--   text: each sent form's keys, its prompt's hash and fingerprint, requests, first and last use.
--   Reads TEMP TABLE system_prompts.
SELECT text_key, message_key, raw_hash, system_fp, requests, first_seen, last_seen
FROM system_prompts
ORDER BY text_key, message_key
