-- name: cache_sim_merge
-- params: -
-- description: A scenario's results from the rows it re-simulated (`sim_resimulated`) and, for
--   every other row, the scenario it differs from only in those rows (`sim_base`): ideal_bp
--   re-simulates the rows cached at breakpoints over as_logged, ideal the scopes with a dynamic
--   span moved over ideal_bp (`audit.cache._simulate_over`). Request ids are the store's unique key.
SELECT * FROM sim_resimulated
UNION ALL
SELECT b.* FROM sim_base b ANTI JOIN sim_resimulated r USING (request_id)
