-- name: dq_edge_cases
-- params: rare_share
-- description: Train examples that are edge cases: in a rare task type (below $rare_share of traffic,
--   or `other`, the requests without a recurring template) or longer than their type's 95th
--   percentile of example tokens (the long tail).
WITH train AS (
    SELECT task_type, tokens FROM lineage WHERE kind = 'example' AND split = 'train'
),
p95 AS (
    SELECT task_type, quantile_cont(tokens, 0.95) AS p95_tokens FROM train GROUP BY ALL
)
SELECT
    count(*) AS examples,
    count(*) FILTER (
        WHERE coalesce(s.share_requests, 0) < $rare_share OR t.task_type = 'other' OR t.tokens > p.p95_tokens
    ) AS edge_cases
FROM train t
JOIN p95 p USING (task_type)
LEFT JOIN task_types s USING (task_type)
