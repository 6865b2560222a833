-- name: decide_rows
-- params: -
-- description: For each staged row: is it a repeat (same id and content earlier in this run or
--   already stored)? If new, its final id: the first new record with an id keeps it unless the store
--   already holds a different record under it; later ones get `id~<fp8>`.
CREATE TEMP TABLE decided AS
WITH ranked AS (
    SELECT k.*,
           row_number() OVER (PARTITION BY request_id, _fp ORDER BY source_file, source_line) AS _copy,
           EXISTS (SELECT 1 FROM existing_keys e WHERE e.base_id = k.request_id AND e._fp = k._fp) AS _in_store
    FROM staged_keys k
), fresh AS (
    SELECT *,
           row_number() OVER (PARTITION BY request_id ORDER BY source_file, source_line) AS _nth
    FROM ranked WHERE _copy = 1 AND NOT _in_store
)
SELECT r._file, r._row, r.source_file, r.date,
       (r._copy > 1 OR r._in_store) AS is_duplicate,
       CASE WHEN f._nth = 1 AND NOT EXISTS (SELECT 1 FROM existing_keys e WHERE e.base_id = r.request_id)
            THEN r.request_id ELSE r.request_id || '~' || substr(r._fp, 1, 8) END AS final_id
FROM ranked r LEFT JOIN fresh f USING (_file, _row);
