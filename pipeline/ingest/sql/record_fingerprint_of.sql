-- name: record_fingerprint_of
-- params: -
-- description: `record_fp` (record_fingerprint.sql) from the md5 of the system text rather than the
--   text: the staging worker computes that md5 once per distinct system prompt (writer.py
--   `_system_md5s`, passed to `row_keys`; a 10 KB prompt repeated in
--   most rows cost 13.6 µs of md5 per row, of 21.4 µs for all the keys). The one definition of the
--   fingerprint; `record_fp` calls it.
CREATE OR REPLACE TEMP MACRO record_fp_of(source_format, response_id, ts, model, response_text, error_type, system_md5,
                                          messages) AS
    md5(concat_ws('|', coalesce(source_format, ''), coalesce(response_id, ''),
        coalesce(CAST(ts AS VARCHAR), ''), coalesce(model, ''), coalesce(response_text, ''),
        coalesce(error_type, ''), coalesce(system_md5, ''),
        coalesce(CAST(len(messages) AS VARCHAR), ''),
        coalesce(md5(CAST(messages[len(messages)] AS VARCHAR)), '')));
