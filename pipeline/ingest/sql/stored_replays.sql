-- name: stored_replays
-- params: previous
-- description: Replay fingerprints (`replay_fp`) of stored rows whose response id a staged row also
--   carries: a response recorded again in a file read in a later run is a repeat, not a new call.
CREATE TEMP TABLE stored_replays AS
SELECT DISTINCT replay_fp(source_format, response_id, response_text, response_tool_calls, response_reasoning) AS _replay
FROM read_parquet($previous, hive_partitioning = false, union_by_name = true)
WHERE source_format = 'claude_code'
  AND response_id IN (SELECT DISTINCT response_id FROM staged_keys WHERE _replay IS NOT NULL);
