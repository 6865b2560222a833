-- name: batch_result_fp
-- params: -
-- description: Fingerprint of the result half of a batch row (what a `result` row and the `full`
--   row it became share), so a result file ingested again after its row was completed is a repeat.
CREATE OR REPLACE TEMP MACRO batch_result_fp(response_id, response_text, finish_reason_raw, error_type,
                                             error_message, usage_raw, status_code) AS
    md5(concat_ws('|', coalesce(response_id, ''), coalesce(response_text, ''), coalesce(finish_reason_raw, ''),
        coalesce(error_type, ''), coalesce(error_message, ''), coalesce(usage_raw, ''),
        coalesce(CAST(status_code AS VARCHAR), '')));
