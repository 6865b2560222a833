-- name: task_profile
-- params: task_types
-- description: What the audit knows of each task type's answers (audit/task_types.parquet).
SELECT task_type, label, json_output_rate, tool_call_rate, output_tokens_p50, models, share_requests, spend_usd
FROM read_parquet($task_types)
