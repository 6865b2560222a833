-- name: existing_keys
-- params: previous
-- description: Keys of rows already in the store whose base id collides with a staged row (with
--   where each is, so a batch half completed by this run can be replaced).
CREATE TEMP TABLE existing_keys AS
SELECT split_part(request_id, '~', 1) AS base_id, request_id, filename AS _file, file_row_number AS _row,
       record_fp(source_format, response_id, ts, model, response_text, messages) AS _fp,
       source_format, source_file, source_line, _kind, batch_folder(source_file) AS _folder,
       CASE WHEN _kind IS NOT NULL THEN batch_request_fp(system_text, messages, request_params, tools_json) END AS _req_fp,
       CASE WHEN _kind IS NOT NULL THEN batch_result_fp(response_id, response_text, finish_reason_raw, error_type,
                                                        error_message, usage_raw, status_code) END AS _res_fp
FROM (SELECT *, batch_kind(is_batch, system_text, messages, request_params, response_id, response_text,
                           finish_reason, status_code, error_type, usage_missing) AS _kind
      FROM read_parquet($previous, hive_partitioning = false, union_by_name = true,
                        filename = true, file_row_number = true))
WHERE split_part(request_id, '~', 1) IN (SELECT DISTINCT request_id FROM staged_keys);
