-- name: request_outcome
-- params: -
-- description: The one definition of a request's outcome, as macros on every store connection
--   (pipeline/workdir/store.py): failed = the provider answered with an error (finish reason
--   `error`, an error type, or HTTP status >= 400); rate-limited = HTTP 429 or an error naming a
--   rate limit; server error = HTTP 5xx or a server / overload / timeout error; succeeded = not
--   failed. Never NULL, so `NOT request_failed(...)` keeps a call without a finish reason.
CREATE OR REPLACE TEMP MACRO request_failed(finish_reason, error_type, status_code) AS
    coalesce(finish_reason = 'error', false) OR error_type IS NOT NULL OR coalesce(status_code >= 400, false);
CREATE OR REPLACE TEMP MACRO request_succeeded(finish_reason, error_type, status_code) AS
    NOT request_failed(finish_reason, error_type, status_code);
CREATE OR REPLACE TEMP MACRO request_rate_limited(status_code, error_type, error_message) AS
    coalesce(status_code = 429, false)
    OR regexp_matches(coalesce(error_type, '') || ' ' || coalesce(error_message, ''), '(?i)rate.?limit|too many requests|429');
CREATE OR REPLACE TEMP MACRO request_server_error(status_code, error_type) AS
    coalesce(status_code >= 500, false) OR regexp_matches(coalesce(error_type, ''), '(?i)server|overload|internal|timeout');
