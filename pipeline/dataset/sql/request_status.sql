-- name: request_status
-- params: -
-- description: The outcome of every request: the filter that dropped it; else `kept` when an example
--   it is part of was kept; else the dedup reason of the first example it is part of, with the
--   representative kept in its place.
CREATE TABLE status AS
WITH part_of AS (
    SELECT re.request_id, bool_or(d.uid IS NULL) AS in_kept, min(re.uid) AS first_uid
    FROM req_ex re LEFT JOIN dup d USING (uid)
    GROUP BY re.request_id
)
SELECT r.pos, r.request_id, r.ts, r.task_type, r.tokens, r.assistant_tokens,
       CASE WHEN r.reason IS NOT NULL THEN r.reason WHEN p.in_kept THEN 'kept' ELSE d.reason END AS status,
       CASE WHEN r.reason IS NOT NULL THEN r.detail
            WHEN NOT p.in_kept THEN printf('Jaccard %.3f with %s', d.jaccard, b.final_request_id) END AS detail,
       CASE WHEN r.reason IS NULL AND NOT p.in_kept THEN b.example_id END AS duplicate_of
FROM req r
LEFT JOIN part_of p USING (request_id)
LEFT JOIN dup d ON d.uid = p.first_uid
LEFT JOIN ex b ON b.uid = d.best_uid
