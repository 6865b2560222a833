-- name: decide_rows
-- params: -
-- description: For each staged row: is it a repeat (same id and content earlier in this run or
--   already stored, a batch half a stored row already holds, or a transcript response recorded again
--   under another request id, `replay_fp`: the parent's copy is kept over a sidechain's)? If new, its final id: the first new
--   record with an id keeps it unless the store already holds a different record under it; later
--   ones get `id~<fp8>`. A row that completes a stored batch half (`batch_links`) is written merged
--   with it, under its id (`completed_rows`), and the stored half is dropped. Of two copies of a
--   record, one that completes a stored half is the one kept.
--   Only the rows that share their key with another staged row are ranked (a window over every
--   staged row sorted all of them: 1 M rows, three sorts, most of the commit's decision).
CREATE TEMP TABLE decided AS
WITH shared_content AS (  -- (id, content) staged more than once
    SELECT request_id, _fp FROM staged_keys GROUP BY ALL HAVING count(*) > 1
), content_copies AS (
    -- of two copies of a record, the one completing a stored batch half is kept (a copy of a
    -- results file under another name in the same run would otherwise win by its name and be
    -- stored apart as `id~<fp8>`, the stored half left incomplete)
    SELECT k._file, k._row,
           row_number() OVER (PARTITION BY k.request_id, k._fp
                              ORDER BY EXISTS (SELECT 1 FROM batch_links l WHERE l._file = k._file
                                                                           AND l._row = k._row) DESC,
                                       k.source_file, k.source_line) AS _copy
    FROM staged_keys k
    SEMI JOIN shared_content s ON s.request_id IS NOT DISTINCT FROM k.request_id AND s._fp = k._fp
), replay_copies AS (
    SELECT _file, _row, row_number() OVER (PARTITION BY _replay ORDER BY _sidechain, source_file, source_line) AS _copy
    FROM staged_keys WHERE _replay IS NOT NULL
), ranked AS (
    SELECT k.*,
           greatest(coalesce(c._copy, 1), r._copy) AS _copy,
           EXISTS (SELECT 1 FROM existing_keys e WHERE e.base_id = k.request_id AND e._fp = k._fp)
           OR EXISTS (SELECT 1 FROM half_repeats h WHERE h._file = k._file AND h._row = k._row)
           OR EXISTS (SELECT 1 FROM stored_replays p WHERE p._replay = k._replay) AS _in_store
    FROM staged_keys k LEFT JOIN content_copies c USING (_file, _row) LEFT JOIN replay_copies r USING (_file, _row)
), fresh AS (
    SELECT _file, _row, request_id, source_file, source_line FROM ranked WHERE _copy = 1 AND NOT _in_store
), fresh_order AS (  -- among the new records under one id, the first keeps it
    SELECT f._file, f._row,
           row_number() OVER (PARTITION BY f.request_id ORDER BY f.source_file, f.source_line) AS _nth
    FROM fresh f
    SEMI JOIN (SELECT request_id FROM fresh GROUP BY 1 HAVING count(*) > 1) s
           ON s.request_id IS NOT DISTINCT FROM f.request_id
)
SELECT r._file, r._row, r.source_file, r.date,
       (r._copy > 1 OR r._in_store) AS is_duplicate,
       CASE WHEN l.stored_id IS NOT NULL THEN l.stored_id
            WHEN r._copy = 1 AND NOT r._in_store AND coalesce(f._nth, 1) = 1
                 AND NOT EXISTS (SELECT 1 FROM existing_keys e WHERE e.base_id = r.request_id)
            THEN r.request_id ELSE r.request_id || '~' || substr(r._fp, 1, 8) END AS final_id,
       l.stored_file IS NOT NULL AND r._copy = 1 AND NOT r._in_store AS completes
FROM ranked r LEFT JOIN fresh_order f USING (_file, _row) LEFT JOIN batch_links l USING (_file, _row);
