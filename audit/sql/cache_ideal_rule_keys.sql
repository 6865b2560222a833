-- name: cache_ideal_rule_keys
-- params: -
-- description: `scope || chr(31) || rules` of every simulated row of a scope in which some request
--   has an "ideal ordering" variant (a dynamic span moved): the rows the ideal scenario must
--   re-simulate. Cache entries are keyed by hashes seeded with the scope, so a scope without a
--   variant has the ideal_bp scenario's input and results.
SELECT DISTINCT scope || chr(31) || rules AS rule_key
FROM prepared
WHERE simulated AND scope IN (SELECT scope FROM prepared WHERE simulated AND ideal_token_hashes IS NOT NULL)
ORDER BY rule_key
