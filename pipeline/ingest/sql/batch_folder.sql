-- name: batch_folder
-- params: -
-- description: The folder of a batch file: the halves of one call pair within a folder, as in
--   `formats/batch_join.py` (custom_ids such as `request-0` repeat across batches).
CREATE OR REPLACE TEMP MACRO batch_folder(source_file) AS regexp_replace(source_file, '[/\\][^/\\]*$', '');
