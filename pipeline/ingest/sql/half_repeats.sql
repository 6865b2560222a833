-- name: half_repeats
-- params: -
-- description: Staged batch halves (`request` or `result` rows) whose half a stored `full` row of the
--   same id already holds: the file was ingested again after its row was completed, a repeat.
CREATE TEMP TABLE half_repeats AS
SELECT k._file, k._row
FROM staged_keys k
WHERE k._kind IN ('request', 'result')
  AND EXISTS (SELECT 1 FROM existing_keys e
              WHERE e.base_id = k.request_id AND e.source_format = k.source_format AND e._kind = 'full'
                AND ((k._kind = 'request' AND e._req_fp = k._req_fp) OR (k._kind = 'result' AND e._res_fp = k._res_fp)));
