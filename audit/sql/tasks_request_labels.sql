-- name: tasks_request_labels
-- params: -
-- description: request_labels (schemas/labels.py): task type + signals per request. Needs TEMP
--   TABLEs features, task_assignment, user_skeletons and signals (sparse: flagged requests only).
--   clean_example is THE dataset filter: answered (no error, status < 400, text or tool calls),
--   finish_reason stop or tool_calls, not regenerated, not edited, not rated negatively.
SELECT
    f.request_id,
    f.ts,
    f.week,
    f.model,
    a.task_type,
    a.task_label,
    f.system_fp,
    f.tools_fp,
    s.user_skeleton_fp,
    coalesce(sg.regenerated, false) AS regenerated,
    sg.regeneration_of,
    coalesce(sg.is_retry, false) AS is_retry,
    sg.retry_of,
    f.multi_choice,
    coalesce(sg.edited, false) AS edited,
    sg.edit_similarity,
    sg.edit_source,
    f.feedback_rating,
    coalesce(f.feedback_rating < 0, false) AS negative_feedback,
    f.failed,
    f.answered
        AND coalesce(f.finish_reason IN ('stop', 'tool_calls'), false)
        AND NOT coalesce(sg.regenerated, false)
        AND NOT coalesce(sg.edited, false)
        AND coalesce(f.feedback_rating, 0) >= 0 AS clean_example
FROM features f
JOIN task_assignment a USING (request_id)
LEFT JOIN user_skeletons s USING (request_id)
LEFT JOIN signals sg USING (request_id)
