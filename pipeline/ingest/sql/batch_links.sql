-- name: batch_links
-- params: -
-- description: Staged batch rows that complete a row already in the store, so a batch whose input
--   file and results were ingested in different runs ends as one row per call, as if both had been
--   read together: a staged half (`request` or `result`) completes the stored opposite half of its
--   custom_id in its folder (several of one custom_id pair in file order, as in batch_join.py); a
--   staged `full` row replaces a stored half whose fingerprint it shares. A half that a stored
--   `full` row already holds is a repeat (`half_repeats`), not a link. Each stored row is
--   completed at most once; the completed row keeps the stored row's id.
CREATE TEMP TABLE batch_links AS
WITH st AS (
    SELECT k.* FROM staged_keys k
    WHERE k._kind IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM existing_keys e WHERE e.base_id = k.request_id AND e._fp = k._fp)
      AND NOT EXISTS (SELECT 1 FROM half_repeats h WHERE h._file = k._file AND h._row = k._row)
), st_half AS (
    SELECT *, row_number() OVER (PARTITION BY request_id, source_format, _folder, _kind
                                 ORDER BY source_file, source_line) AS _nth
    FROM st WHERE _kind IN ('request', 'result')
), ex_half AS (
    SELECT *, row_number() OVER (PARTITION BY base_id, source_format, _folder, _kind
                                 ORDER BY source_file, source_line) AS _nth
    FROM existing_keys WHERE _kind IN ('request', 'result')
), linked AS (
    SELECT s._file, s._row, s._kind AS kind, e._file AS stored_file, e._row AS stored_row,
           e.request_id AS stored_id, 0 AS _pref
    FROM st_half s JOIN ex_half e
      ON e.base_id = s.request_id AND e.source_format = s.source_format AND e._folder = s._folder
     AND e._kind <> s._kind AND e._nth = s._nth
    UNION ALL
    SELECT s._file, s._row, s._kind, e._file, e._row, e.request_id, 1
    FROM st s JOIN ex_half e
      ON e.base_id = s.request_id AND e.source_format = s.source_format
     AND ((e._kind = 'request' AND e._req_fp = s._req_fp) OR (e._kind = 'result' AND e._res_fp = s._res_fp))
    WHERE s._kind = 'full'
)
SELECT _file, _row, kind, stored_file, stored_row, stored_id
FROM linked
QUALIFY row_number() OVER (PARTITION BY stored_file, stored_row ORDER BY _pref, _file, _row) = 1
    AND row_number() OVER (PARTITION BY _file, _row ORDER BY _pref, stored_file, stored_row) = 1;
