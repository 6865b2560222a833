-- name: tasks_macros
-- params: -
-- description: `trimmed` is trim() (spaces off both ends) without DuckDB's cost: its rtrim walks
--   the whole string, so a text that does not end in a space gets ltrim alone (the same result).
CREATE OR REPLACE TEMP MACRO trimmed(s) AS
    CASE WHEN ends_with(s, ' ') THEN trim(s) ELSE ltrim(s) END;
