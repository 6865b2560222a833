-- name: row_keys
-- params: -
-- description: The identity of normalized rows (not their content), as a table macro over a view
--   or table named `rows` with the row columns plus `filename`, `file_row_number` and `system_md5`
--   (`md5(system_text)`, which the worker computes once per distinct prompt: writer.py
--   `_system_md5s`): where each row is, its id, date, content fingerprint, batch half and its
--   fingerprints, replay fingerprint. One definition for the rows a worker stages and for a row too
--   large to stage with others, keyed alone while its worker holds it (`Spool.write_rows(solo=True)`).
CREATE OR REPLACE TEMP MACRO row_keys(rows, undated) AS TABLE
SELECT filename AS _file, file_row_number AS _row, request_id, source_file, source_line,
       coalesce(strftime(ts, '%Y-%m-%d'), undated) AS date,
       record_fp_of(source_format, response_id, ts, model, response_text, error_type, system_md5, messages) AS _fp,
       source_format, _kind, batch_folder(source_file) AS _folder, response_id,
       replay_fp(source_format, response_id, response_text, response_tool_calls, response_reasoning) AS _replay,
       coalesce(json_extract(metadata_json, '$.is_sidechain')::BOOLEAN, false) AS _sidechain,
       CASE WHEN _kind IS NOT NULL THEN batch_request_fp(system_text, messages, request_params, tools_json) END AS _req_fp,
       CASE WHEN _kind IS NOT NULL THEN batch_result_fp(response_id, response_text, finish_reason_raw, error_type,
                                                        error_message, usage_raw, status_code) END AS _res_fp
FROM (SELECT *, batch_kind(is_batch, system_text, messages, request_params, response_id, response_text,
                           finish_reason, status_code, error_type, usage_missing) AS _kind
      FROM query_table(rows));
