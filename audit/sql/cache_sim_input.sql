-- name: cache_sim_input
-- params: ideal, lo, hi, rule_keys
-- description: The simulation's input in partition order: hash bucket of the first prompt block,
--   then time. With $ideal the "ideal ordering" hashes replace the logged ones where they differ.
--   Only the partitions $lo..$hi: the caller sorts a large log in slices of partitions, each
--   within DuckDB's memory limit, and chains them (the same rows in the same order). With
--   $rule_keys (`scope || chr(31) || rules`), only the rows of those rule sets; NULL: all.
SELECT * FROM (
SELECT
    request_id, ts_ms, scope, rules, min_tokens, factor, approximate, reported_input, est_total, n_blocks,
    CASE WHEN $ideal THEN coalesce(ideal_bucket, bucket) ELSE bucket END AS part,
    CASE WHEN $ideal AND ideal_token_hashes IS NOT NULL THEN ideal_token_hashes ELSE token_hashes END AS token_hashes,
    CASE WHEN $ideal AND ideal_block_ends IS NOT NULL THEN ideal_block_ends ELSE block_ends END AS block_ends,
    CASE WHEN $ideal AND ideal_block_hashes IS NOT NULL THEN ideal_block_hashes ELSE block_hashes END AS block_hashes,
    bp_blocks, bp_1h, stable_end, history_end
FROM prepared
WHERE simulated AND ($rule_keys IS NULL OR list_contains($rule_keys, scope || chr(31) || rules))
)
WHERE part BETWEEN $lo AND $hi
ORDER BY part, ts_ms, request_id
