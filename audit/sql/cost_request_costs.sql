-- name: cost_request_costs
-- params: -
-- description: Spend per request: exclusive usage buckets x the dated price table (USD). Components
--   are after the batch discount so they sum to cost_usd; cost_uncached_usd prices the same input
--   as if nothing had been cached (the "API without caching" baseline).
WITH r AS (
    SELECT request_id, ts, date, model, model_resolved, provider,
           coalesce(is_batch, false) AS is_batch,
           coalesce(usage_missing, true) AS usage_missing,
           coalesce(in_uncached, 0) AS in_uncached,
           coalesce(in_cache_read, 0) AS in_cache_read,
           coalesce(in_cache_write_5m, 0) AS in_cache_write_5m,
           coalesce(in_cache_write_1h, 0) AS in_cache_write_1h,
           coalesce(in_cache_write_unspecified, 0) AS in_cache_write_unspecified,
           coalesce(out_total, 0) AS out_total,
           coalesce(out_reasoning, 0) AS out_reasoning,
           cost_reported_usd
    FROM requests
),
priced AS (
    SELECT r.*, m.price_model_key, p.effective_from AS price_effective_from,
           p.input, p.cached_input, p.cache_write_5m, p.cache_write_1h, p.output, p.batch_discount,
           p.per_tokens,
           CASE WHEN r.is_batch THEN 1 - coalesce(p.batch_discount, 0) ELSE 1 END AS pay_share
    FROM r
    LEFT JOIN price_map m
        ON m.model IS NOT DISTINCT FROM r.model AND m.model_resolved IS NOT DISTINCT FROM r.model_resolved
    LEFT JOIN price_versions p
        ON p.key = m.price_model_key
       AND ((r.ts IS NULL AND p.valid_to IS NULL)
            OR (r.ts >= p.valid_from AND (p.valid_to IS NULL OR r.ts < p.valid_to)))
)
SELECT
    request_id, ts, date, model, model_resolved, provider, is_batch,
    price_model_key,
    price_effective_from,
    price_model_key IS NOT NULL AND NOT usage_missing AS priced,
    usage_missing,
    in_uncached, in_cache_read, in_cache_write_5m, in_cache_write_1h, in_cache_write_unspecified,
    in_uncached + in_cache_read + in_cache_write_5m + in_cache_write_1h + in_cache_write_unspecified AS input_tokens,
    out_total, out_reasoning,
    in_uncached * input / per_tokens * pay_share AS cost_input_usd,
    in_cache_read * cached_input / per_tokens * pay_share AS cost_cached_input_usd,
    (in_cache_write_5m * cache_write_5m + in_cache_write_1h * cache_write_1h
        + in_cache_write_unspecified * cache_write_5m) / per_tokens * pay_share AS cost_cache_write_usd,
    out_total * output / per_tokens * pay_share AS cost_output_usd,
    CASE WHEN is_batch THEN
        (in_uncached * input + in_cache_read * cached_input + in_cache_write_5m * cache_write_5m
         + in_cache_write_1h * cache_write_1h + in_cache_write_unspecified * cache_write_5m
         + out_total * output) / per_tokens * coalesce(batch_discount, 0)
    ELSE 0 END AS batch_discount_usd,
    CASE WHEN price_model_key IS NOT NULL AND NOT usage_missing THEN
        (in_uncached * input + in_cache_read * cached_input + in_cache_write_5m * cache_write_5m
         + in_cache_write_1h * cache_write_1h + in_cache_write_unspecified * cache_write_5m
         + out_total * output) / per_tokens * pay_share
    END AS cost_usd,
    CASE WHEN price_model_key IS NOT NULL AND NOT usage_missing THEN
        ((in_uncached + in_cache_read + in_cache_write_5m + in_cache_write_1h + in_cache_write_unspecified) * input
         + out_total * output) / per_tokens * pay_share
    END AS cost_uncached_usd,
    cost_reported_usd
FROM priced
ORDER BY ts, request_id
