-- name: weekly_labels
-- params: this_start, prev_start, end_ts
-- description: User signals and the clean-example (filter pass) rate per week, from the task audit's
--   request_labels table. Rates use the same denominators as audit.tasks (answered = not failed).
SELECT
    CASE WHEN ts > $this_start THEN 'this' ELSE 'prev' END AS week,
    count(*) AS requests,
    count(*) FILTER (WHERE NOT coalesce(failed, false)) AS answered,
    count(*) FILTER (WHERE coalesce(regenerated, false)) AS regenerated,
    count(*) FILTER (WHERE coalesce(edited, false)) AS edited,
    count(*) FILTER (WHERE feedback_rating IS NOT NULL) AS feedback,
    count(*) FILTER (WHERE coalesce(negative_feedback, false)) AS negative_feedback,
    count(*) FILTER (WHERE coalesce(clean_example, false)) AS clean_examples
FROM request_labels
WHERE ts > $prev_start AND ts <= $end_ts
GROUP BY ALL
