-- name: solo_keys
-- params: undated
-- description: The keys (`row_keys`) of one row staged alone (the view `solo_rows` over the Arrow row
--   its worker holds), kept in its file's metadata so no commit has to read the row to dedupe it.
SELECT * EXCLUDE (_file, _row) FROM row_keys('solo_rows', $undated);
