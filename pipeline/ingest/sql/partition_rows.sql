-- name: partition_rows
-- params: -
-- description: The new rows of one date partition, in time order: the staged rows `partition_ids`
--   keeps (file and row number, with each row's final id from `decide_rows`), read from the view
--   `staged_rows` (the staged files holding them, filtered to the partition's day so the scan skips
--   the other days' row groups), plus the rows that complete a stored batch half (`completed_rows`,
--   already of this date).
SELECT * FROM (
    SELECT d.final_id AS request_id, s.* EXCLUDE (request_id, filename, file_row_number)
    FROM staged_rows s
    JOIN partition_ids d ON d._file = s.filename AND d._row = s.file_row_number
    UNION ALL BY NAME
    SELECT * EXCLUDE (date) FROM completed_rows
)
ORDER BY ts, request_id;
