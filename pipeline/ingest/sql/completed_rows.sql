-- name: completed_rows
-- params: staging, previous, undated
-- description: The rows `batch_links` completes, whole: the request half's columns (what was asked:
--   model as requested, prompt, tools, parameters) from the row holding the request, every other
--   column (what happened: ids, time, response, status, usage, source line of the result) from the
--   row holding the result, each falling back to the other half, exactly as `batch_join.py` would
--   have joined the two lines in one run. Keeps the stored row's id.
CREATE TEMP TABLE completed_rows AS
WITH halves AS (
    SELECT l.stored_id,
           CASE WHEN l.kind = 'result' THEN p ELSE s END AS q,
           CASE WHEN l.kind = 'request' THEN p ELSE s END AS a
    FROM batch_links l
    JOIN decided d ON d._file = l._file AND d._row = l._row AND d.completes
    JOIN (SELECT * EXCLUDE (filename, file_row_number), filename AS _file, file_row_number AS _row
          FROM read_parquet($staging, filename = true, file_row_number = true)) s
      ON s._file = l._file AND s._row = l._row
    JOIN (SELECT * EXCLUDE (filename, file_row_number), filename AS _file, file_row_number AS _row
          FROM read_parquet($previous, hive_partitioning = false, union_by_name = true,
                            filename = true, file_row_number = true)) p
      ON p._file = l.stored_file AND p._row = l.stored_row
), merged AS (
    SELECT stored_id AS request_id,
           coalesce(a.ts, q.ts) AS ts,
           coalesce(q.provider, a.provider) AS provider,
           coalesce(q.endpoint, a.endpoint) AS endpoint,
           coalesce(q.model, a.model) AS model,
           coalesce(a.model_resolved, q.model_resolved) AS model_resolved,
           coalesce(q.user_id, a.user_id) AS user_id,
           coalesce(q.session_id, a.session_id) AS session_id,
           coalesce(q.parent_id, a.parent_id) AS parent_id,
           coalesce(q.system_text, a.system_text) AS system_text,
           coalesce(q.messages, a.messages) AS messages,
           coalesce(q.tools_json, a.tools_json) AS tools_json,
           coalesce(q.cache_breakpoints, a.cache_breakpoints) AS cache_breakpoints,
           coalesce(q.request_params, a.request_params) AS request_params,
           coalesce(a.response_id, q.response_id) AS response_id,
           coalesce(a.response_text, q.response_text) AS response_text,
           coalesce(a.response_tool_calls, q.response_tool_calls) AS response_tool_calls,
           coalesce(a.response_reasoning, q.response_reasoning) AS response_reasoning,
           coalesce(a.n_choices, q.n_choices) AS n_choices,
           coalesce(a.choices, q.choices) AS choices,
           coalesce(a.finish_reason, q.finish_reason) AS finish_reason,
           coalesce(a.finish_reason_raw, q.finish_reason_raw) AS finish_reason_raw,
           coalesce(a.status_code, q.status_code) AS status_code,
           coalesce(a.error_type, q.error_type) AS error_type,
           coalesce(a.error_message, q.error_message) AS error_message,
           coalesce(a.in_uncached, q.in_uncached) AS in_uncached,
           coalesce(a.in_cache_read, q.in_cache_read) AS in_cache_read,
           coalesce(a.in_cache_write_5m, q.in_cache_write_5m) AS in_cache_write_5m,
           coalesce(a.in_cache_write_1h, q.in_cache_write_1h) AS in_cache_write_1h,
           coalesce(a.in_cache_write_unspecified, q.in_cache_write_unspecified) AS in_cache_write_unspecified,
           coalesce(a.out_total, q.out_total) AS out_total,
           coalesce(a.out_reasoning, q.out_reasoning) AS out_reasoning,
           coalesce(a.usage_raw, q.usage_raw) AS usage_raw,
           coalesce(a.usage_missing, q.usage_missing) AS usage_missing,
           coalesce(a.cost_reported_usd, q.cost_reported_usd) AS cost_reported_usd,
           coalesce(a.latency_ms, q.latency_ms) AS latency_ms,
           coalesce(a.ttft_ms, q.ttft_ms) AS ttft_ms,
           coalesce(q.is_stream, a.is_stream) AS is_stream,
           coalesce(q.is_batch, a.is_batch) AS is_batch,
           coalesce(a.service_tier, q.service_tier) AS service_tier,
           coalesce(a.feedback_score, q.feedback_score) AS feedback_score,
           coalesce(a.feedback_json, q.feedback_json) AS feedback_json,
           coalesce(q.metadata_json, a.metadata_json) AS metadata_json,
           coalesce(q.source_format, a.source_format) AS source_format,
           coalesce(a.source_file, q.source_file) AS source_file,
           coalesce(a.source_line, q.source_line) AS source_line
    FROM halves
)
SELECT *, coalesce(strftime(ts, '%Y-%m-%d'), $undated) AS date FROM merged;
