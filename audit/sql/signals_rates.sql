-- name: signals_rates
-- params: -
-- description: signal_rates (schemas/labels.py): regeneration, retry, edit, negative-feedback and
--   clean rates per task type, per model, per week (Monday) and overall, in one GROUPING SETS
--   pass over TEMP TABLE labels (+ features for `answered`, the rate denominator).
SELECT
    CASE
        WHEN grouping(l.task_type) = 0 THEN 'task_type'
        WHEN grouping(l.model) = 0 THEN 'model'
        WHEN grouping(l.week) = 0 THEN 'week'
        ELSE 'all'
    END AS dimension,
    CASE
        WHEN grouping(l.task_type) = 0 THEN l.task_type
        WHEN grouping(l.model) = 0 THEN coalesce(l.model, '(unknown)')
        WHEN grouping(l.week) = 0 THEN coalesce(CAST(l.week AS VARCHAR), '(undated)')
        ELSE 'all'
    END AS key,
    count(*) AS requests,
    sum(CAST(f.answered AS INTEGER)) AS answered,
    sum(CAST(l.regenerated AS INTEGER)) AS regenerated,
    sum(CAST(l.regenerated AS INTEGER)) / nullif(sum(CAST(f.answered AS INTEGER)), 0) AS regeneration_rate,
    sum(CAST(l.is_retry AS INTEGER)) AS retries,
    avg(CAST(l.is_retry AS INTEGER)) AS retry_rate,
    sum(CAST(l.edited AS INTEGER)) AS edited,
    sum(CAST(l.edited AS INTEGER)) / nullif(sum(CAST(f.answered AS INTEGER)), 0) AS edit_rate,
    count(l.feedback_rating) AS feedback_count,
    sum(CAST(l.negative_feedback AS INTEGER)) AS negative_feedback,
    sum(CAST(l.negative_feedback AS INTEGER)) / nullif(count(l.feedback_rating), 0) AS negative_feedback_rate,
    sum(CAST(l.clean_example AS INTEGER)) AS clean_examples,
    avg(CAST(l.clean_example AS INTEGER)) AS clean_rate
FROM labels l
JOIN features f USING (request_id)
GROUP BY GROUPING SETS ((l.task_type), (l.model), (l.week), ())
ORDER BY dimension, key
