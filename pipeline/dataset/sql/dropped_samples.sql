-- name: dropped_samples
-- params: size
-- description: The first `size` dropped request ids per reason, reasons in order of first occurrence.
SELECT status, list(request_id ORDER BY pos) FILTER (WHERE rank <= $size) AS request_ids
FROM (SELECT status, request_id, pos, row_number() OVER (PARTITION BY status ORDER BY pos) AS rank FROM status
      WHERE status <> 'kept')
GROUP BY status
ORDER BY min(pos)
