-- name: cache_scope_factors
-- params: -
-- description: Calibration factor (reported input tokens per estimated token) per cache scope, for
--   requests that carry no usage. Ratios outside [0.2, 5] mean the logged prompt is incomplete
--   (images, hidden system text) and would distort the median, so they are left out.
SELECT scope, median(factor) AS factor
FROM prepared
WHERE factor IS NOT NULL AND factor BETWEEN 0.2 AND 5
GROUP BY scope
