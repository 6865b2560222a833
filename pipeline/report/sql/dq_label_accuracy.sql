-- name: dq_label_accuracy
-- params: -
-- description: The label-accuracy proxy over answered requests: the share users did not regenerate,
--   edit or rate negatively (audit request_labels).
SELECT
    count(*) FILTER (WHERE NOT coalesce(failed, false)) AS answered,
    count(*) FILTER (
        WHERE NOT coalesce(failed, false) AND NOT coalesce(regenerated, false)
          AND NOT coalesce(edited, false) AND NOT coalesce(negative_feedback, false)
    ) AS accepted
FROM request_labels
