-- name: record_fingerprint
-- params: -
-- description: Content fingerprint of a normalized row. Two rows are the same record when their
--   base id (before any "~" disambiguation suffix) and this fingerprint agree; the same id with a
--   different fingerprint means two sources reused an id (batch custom_ids such as "request-0").
--   The error and the system text count (a failed call is not its unanswered request; two batches
--   may send one user message under different instructions). Only the LAST message is hashed (with
--   the message count): enough to tell two calls apart, and cheap for agent transcripts whose rows carry whole conversations.
CREATE OR REPLACE TEMP MACRO record_fp(source_format, response_id, ts, model, response_text, error_type, system_text, messages) AS
    record_fp_of(source_format, response_id, ts, model, response_text, error_type, md5(system_text), messages);
