-- name: staged_keys
-- params: undated
-- description: Only the identity of every staged row (`row_keys`; not its content), so deduplication
--   stays small in memory whatever the input size; batch rows also carry their half and its
--   fingerprints, transcript rows their replay fingerprint. Reads the view `staged_rows` (the staged
--   Parquet files); rows keyed alone in their worker are added from their files' metadata.
CREATE TEMP TABLE staged_keys AS
SELECT * FROM row_keys('staged_rows', $undated);
