-- name: provider_shares
-- params: -
-- description: Requests per provider (single-provider dependence, sign 4).
SELECT coalesce(provider, 'unknown') AS provider, count(*) AS requests
FROM requests
GROUP BY ALL
ORDER BY requests DESC, provider
