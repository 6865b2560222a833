-- name: stored_solo_keys
-- params: -
-- description: Keys of stored solo rows (rows too large to store with others, each in a file of its
--   own with its keys in the file's metadata, table `stored_solo`) whose base id collides with a
--   staged row, added to `existing_keys` without reading the rows.
INSERT INTO existing_keys BY NAME
SELECT base_id, request_id, _file, _row, _fp, source_format, source_file, source_line, _kind, _folder, _req_fp, _res_fp
FROM stored_solo
WHERE base_id IN (SELECT DISTINCT request_id FROM staged_keys);
