-- name: staged_keys
-- params: staging, undated
-- description: Only the identity of every staged row (not its content), so deduplication stays
--   small in memory whatever the input size; batch rows also carry their half and its fingerprints,
--   transcript rows their replay fingerprint.
CREATE TEMP TABLE staged_keys AS
SELECT filename AS _file, file_row_number AS _row, request_id, source_file, source_line,
       coalesce(strftime(ts, '%Y-%m-%d'), $undated) AS date,
       record_fp(source_format, response_id, ts, model, response_text, messages) AS _fp,
       source_format, _kind, batch_folder(source_file) AS _folder, response_id,
       replay_fp(source_format, response_id, response_text, response_tool_calls, response_reasoning) AS _replay,
       coalesce(json_extract(metadata_json, '$.is_sidechain')::BOOLEAN, false) AS _sidechain,
       CASE WHEN _kind IS NOT NULL THEN batch_request_fp(system_text, messages, request_params, tools_json) END AS _req_fp,
       CASE WHEN _kind IS NOT NULL THEN batch_result_fp(response_id, response_text, finish_reason_raw, error_type,
                                                        error_message, usage_raw, status_code) END AS _res_fp
FROM (SELECT *, batch_kind(is_batch, system_text, messages, request_params, response_id, response_text,
                           finish_reason, status_code, error_type, usage_missing) AS _kind
      FROM read_parquet($staging, filename = true, file_row_number = true));
