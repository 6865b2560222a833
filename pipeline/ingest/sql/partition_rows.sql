-- name: partition_rows
-- params: lo, hi
-- description: The new rows of one date partition, in time order: the staged rows `partition_ids`
--   keeps (file and row number, with each row's final id from `decide_rows`), read from the view
--   `staged_rows` over the staged files holding them, plus the rows that complete a stored batch
--   half (`completed_rows`, already of this date). The time range [`lo`, `hi`) lets DuckDB skip
--   row groups by their statistics (NULL, NULL: the undated partition).
SELECT * FROM (
    SELECT d.final_id AS request_id, s.* EXCLUDE (request_id, filename, file_row_number)
    FROM staged_rows s
    JOIN partition_ids d ON d._file = s.filename AND d._row = s.file_row_number
    WHERE CASE WHEN $lo IS NULL THEN s.ts IS NULL ELSE s.ts >= $lo AND s.ts < $hi END
    UNION ALL BY NAME
    SELECT * EXCLUDE (date) FROM completed_rows
)
ORDER BY ts, request_id;
