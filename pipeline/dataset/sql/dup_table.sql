-- name: dup_table
-- params: -
-- description: `dup`: the examples dropped as exact or near duplicates, each with the example it
--   duplicates (`best_uid`) and their Jaccard (1.0 for an exact duplicate).
CREATE TABLE dup (uid BIGINT, reason VARCHAR, best_uid BIGINT, jaccard DOUBLE)
