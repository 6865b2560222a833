-- name: stored_solo_replays
-- params: -
-- description: Replay fingerprints of stored solo rows (table `stored_solo`, keys from their files'
--   metadata) whose response id a staged row also carries, added to `stored_replays` as
--   `stored_replays.sql` does for the other stored rows.
INSERT INTO stored_replays
SELECT DISTINCT _replay FROM stored_solo
WHERE source_format = 'claude_code'
  AND response_id IN (SELECT DISTINCT response_id FROM staged_keys WHERE _replay IS NOT NULL);
