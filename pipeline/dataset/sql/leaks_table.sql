-- name: leaks_table
-- params: -
-- description: `leaks`: eval records whose exact Jaccard with a train record reached the dedup
--   threshold (filled by `leaks_insert`), by their line index on each side.
CREATE TABLE leaks (eval_index BIGINT, train_index BIGINT, jaccard DOUBLE)
