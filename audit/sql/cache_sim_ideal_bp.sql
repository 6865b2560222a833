-- name: cache_sim_ideal_bp
-- params: -
-- description: The ideal-breakpoints scenario's results (`audit.cache._simulate_ideal_bp`): the rows
--   cached at breakpoints as re-simulated with the ideal breakpoints (`sim_resimulated`), every other
--   row as simulated as logged (`sim_as_logged`), which the breakpoints do not change. Request ids
--   are the store's unique key.
SELECT * FROM sim_resimulated
UNION ALL
SELECT a.* FROM sim_as_logged a ANTI JOIN sim_resimulated r USING (request_id)
