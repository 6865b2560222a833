-- name: batch_folder
-- params: -
-- description: Where the halves of one batch call pair, as in `formats/batch_join.py`: the folder of
--   the batch file plus its name's stem without the input/output words (`x_batch_input` ~
--   `x_batch_output`), since custom_ids such as `request-0` repeat across batches. Folder and stem
--   are separated by a NUL.
CREATE OR REPLACE TEMP MACRO batch_folder(source_file) AS
    regexp_replace(source_file, '[/\\][^/\\]*$', '') || chr(0)
    || regexp_replace(split_part(regexp_extract(source_file, '[^/\\]*$'), '.', 1),
                      '(input|output|results?|requests?|errors?)', '', 'gi');
