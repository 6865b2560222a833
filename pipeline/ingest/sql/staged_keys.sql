-- name: staged_keys
-- params: staging, undated
-- description: Only the identity of every staged row (not its content), so deduplication stays
--   small in memory whatever the input size.
CREATE TEMP TABLE staged_keys AS
SELECT filename AS _file, file_row_number AS _row, request_id, source_file, source_line,
       coalesce(strftime(ts, '%Y-%m-%d'), $undated) AS date,
       record_fp(source_format, response_id, ts, model, response_text, messages) AS _fp
FROM read_parquet($staging, filename = true, file_row_number = true);
