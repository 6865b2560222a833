-- name: batch_kind
-- params: -
-- description: Which half of a batch call a row holds, so a request ingested in one run and its
--   result in a later run make one row (see `batch_links`): `request` (nothing of the response: the
--   result was not exported yet), `result` (nothing of the request: its input file was not given),
--   `full`, or NULL for a row that is not a batch call.
CREATE OR REPLACE TEMP MACRO batch_kind(is_batch, system_text, messages, request_params, response_id,
                                        response_text, finish_reason, status_code, error_type, usage_missing) AS
    CASE WHEN NOT coalesce(is_batch, false) THEN NULL
         WHEN system_text IS NULL AND messages IS NULL AND request_params IS NULL THEN 'result'
         WHEN response_id IS NULL AND response_text IS NULL AND finish_reason IS NULL AND status_code IS NULL
              AND error_type IS NULL AND coalesce(usage_missing, true) THEN 'request'
         ELSE 'full' END;
