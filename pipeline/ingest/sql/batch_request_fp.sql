-- name: batch_request_fp
-- params: -
-- description: Fingerprint of the request half of a batch row (what a `request` row and the `full`
--   row it became share), so a request file ingested again after its row was completed is a repeat.
CREATE OR REPLACE TEMP MACRO batch_request_fp(system_text, messages, request_params, tools_json) AS
    md5(concat_ws('|', coalesce(system_text, ''), coalesce(CAST(messages AS VARCHAR), ''),
        coalesce(request_params, ''), coalesce(tools_json, '')));
