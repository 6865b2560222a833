-- name: placed_errors
-- params: validation
-- description: The target format's validation errors of the written records (the bucket tasks
--   validated every record and kept the invalid ones), counted per error key as often as the
--   validator named it; `invalid` = the written records with at least one error.
WITH errs AS (
    SELECT v.uid, unnest(v.errors) AS error
    FROM read_parquet($validation) v SEMI JOIN placed p ON p.uid = v.uid
)
SELECT error, count(*) AS n, (SELECT count(DISTINCT uid) FROM errs) AS invalid
FROM errs
GROUP BY error
ORDER BY error
