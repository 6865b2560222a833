-- name: staged_keys
-- params: undated
-- description: Only the identity (`row_keys`; not the content) of the rows one worker stages, over
--   the Arrow table `staged_rows` it holds (with `filename` and `file_row_number`), written beside
--   the staged file: the commit dedupes on these keys and never reads the rows to do so, so its
--   work and memory do not depend on the rows' size (a row too large to stage with others is keyed
--   alone the same way). Batch rows also carry their half and its fingerprints, transcript rows
--   their replay fingerprint.
SELECT * FROM row_keys('staged_rows', $undated);
