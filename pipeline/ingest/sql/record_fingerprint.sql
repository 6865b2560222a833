-- name: record_fingerprint
-- params: -
-- description: Content fingerprint of a normalized row. Two rows are the same record when their
--   base id (before any "~" disambiguation suffix) and this fingerprint agree; the same id with a
--   different fingerprint means two sources reused an id (batch custom_ids such as "request-0").
--   Only the LAST message is hashed (with the message count): enough to tell two calls apart, and
--   cheap for agent transcripts whose rows carry whole conversations.
CREATE OR REPLACE TEMP MACRO record_fp(source_format, response_id, ts, model, response_text, messages) AS
    md5(concat_ws('|', coalesce(source_format, ''), coalesce(response_id, ''),
        coalesce(CAST(ts AS VARCHAR), ''), coalesce(model, ''), coalesce(response_text, ''),
        coalesce(CAST(len(messages) AS VARCHAR), ''),
        coalesce(md5(CAST(messages[len(messages)] AS VARCHAR)), '')));
