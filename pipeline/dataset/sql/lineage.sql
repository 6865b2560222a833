-- name: lineage
-- params: examples
-- description: lineage.parquet (schemas/dataset.py): the written examples in example order (their
--   final request's time, then id), then every dropped request in request order.
SELECT kind, example_id, split, task_type, request_id, source_request_ids, reason, detail, duplicate_of, file,
       line, tokens, assistant_tokens, redactions
FROM (
    SELECT 0 AS part, p.ts, p.final_request_id AS order_id, 'example' AS kind, x.example_id, p.split, p.task_type,
           p.final_request_id AS request_id, x.request_ids AS source_request_ids, NULL AS reason, NULL AS detail,
           NULL AS duplicate_of, p.rel AS file, p.line, p.tokens, p.assistant_tokens, x.redactions
    FROM placed p JOIN read_parquet($examples) x USING (uid)
    UNION ALL
    SELECT 1, ts, request_id, 'dropped', NULL, NULL, task_type, request_id, [request_id], status, detail, duplicate_of,
           NULL, NULL, tokens, assistant_tokens, NULL
    FROM status
    WHERE status <> 'kept'
)
ORDER BY part, ts NULLS FIRST, order_id
