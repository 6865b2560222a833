-- name: load_staged_keys
-- params: keys, staging
-- description: The keys of every staged row (`staged_keys`, one keys file per staged file, written
--   by the workers), each row's file named by its path in this run's staging folder, the name the
--   partition writes read it under.
CREATE TEMP TABLE staged_keys AS
SELECT * REPLACE ($staging || _file AS _file) FROM read_parquet($keys);
