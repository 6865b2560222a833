-- name: traffic_base
-- params: -
-- description: Per-request traffic facts: failure class, latency (batch excluded: asynchronous),
--   spend and task type. Created as a temp table the other traffic queries read.
SELECT
    r.request_id, r.ts, CAST(r.ts AS DATE) AS day, CAST(date_trunc('week', r.ts) AS DATE) AS week,
    r.model, coalesce(l.task_type, 'unlabeled') AS task_type,
    coalesce(r.is_batch, false) AS is_batch,
    request_failed(r.finish_reason, r.error_type, r.status_code) AS failed,
    request_rate_limited(r.status_code, r.error_type, r.error_message) AS rate_limited,
    request_server_error(r.status_code, r.error_type) AS server_error,
    CASE WHEN NOT coalesce(r.is_batch, false) THEN r.latency_ms END AS latency_ms,
    CASE WHEN NOT coalesce(r.is_batch, false) THEN r.ttft_ms END AS ttft_ms,
    rc.cost_usd, rc.input_tokens, rc.out_total AS output_tokens
FROM requests r
LEFT JOIN request_costs rc USING (request_id)
LEFT JOIN (SELECT request_id, any_value(task_type) AS task_type FROM request_labels GROUP BY request_id) l
    USING (request_id)
