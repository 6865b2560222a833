-- name: linked_files
-- params: min_rows
-- description: The staged files the commit hard-links into their date partition as they are: a
--   file of one date, not a solo row's, of at least `min_rows` rows (the workers stage a day run of
--   that size alone), whose every row is new under its own id (not a repeat, not completing a stored
--   batch half, not renamed `id~<fp8>`). Its rows are already in time order.
CREATE TEMP TABLE linked AS
SELECT d._file, any_value(d.date) AS date
FROM decided d JOIN staged_keys k USING (_file, _row)
WHERE d._file NOT IN (SELECT _file FROM solo_staged)
GROUP BY d._file
HAVING count(*) >= $min_rows AND count(DISTINCT d.date) = 1
   AND bool_and(NOT d.is_duplicate AND NOT d.completes AND d.final_id = k.request_id);
