-- name: batch_pairs
-- params: files, format
-- description: The pairs of one batch format's pending lines (`pending/*.parquet`, written by the
--   units), in the order rows are made: first, inside each (folder, file stem, custom_id), the n-th
--   request with the n-th result in file order; then the lines left over, per (folder, custom_id):
--   one request with one result when the folder holds exactly one of each (file stems that did not
--   line up), else each line alone, results before requests. The pairing runs on keys; the records
--   join back only for the rows as they are read out.
WITH keys AS (
    SELECT side, folder, stem, custom_id, source_file, source_line,
           row_number() OVER (PARTITION BY folder, stem, custom_id, side ORDER BY source_file, source_line) AS n
    FROM read_parquet($files)
    WHERE format = $format
),
joined AS (
    SELECT coalesce(q.folder, r.folder) AS folder, coalesce(q.stem, r.stem) AS stem,
           coalesce(q.custom_id, r.custom_id) AS custom_id, coalesce(q.n, r.n) AS n,
           q.source_file AS request_file, q.source_line AS request_line,
           r.source_file AS result_file, r.source_line AS result_line
    FROM (FROM keys WHERE side = 'requests') q
    FULL JOIN (FROM keys WHERE side = 'results') r
        ON q.folder = r.folder AND q.stem = r.stem AND q.custom_id = r.custom_id AND q.n = r.n
),
leftover AS (
    FROM joined WHERE request_file IS NULL OR result_file IS NULL
),
second_chance AS (
    SELECT folder, custom_id,
           first(request_file) FILTER (WHERE request_file IS NOT NULL) AS request_file,
           first(request_line) FILTER (WHERE request_file IS NOT NULL) AS request_line,
           first(result_file) FILTER (WHERE result_file IS NOT NULL) AS result_file,
           first(result_line) FILTER (WHERE result_file IS NOT NULL) AS result_line
    FROM leftover
    GROUP BY folder, custom_id
    HAVING count(request_file) = 1 AND count(result_file) = 1
),
plan AS (
    -- phase 0: the pairs of a batch, ordered (folder, stem, custom_id, n)
    SELECT 0 AS phase, folder, stem AS k1, custom_id AS k2, n, 0 AS kind, NULL::VARCHAR AS k3,
           NULL::VARCHAR AS k4, NULL::BIGINT AS k5, request_file, request_line, result_file, result_line
    FROM joined WHERE request_file IS NOT NULL AND result_file IS NOT NULL
    UNION ALL
    -- phase 1: per (folder, custom_id), the second-chance pair ...
    SELECT 1, folder, custom_id, NULL, NULL, 0, NULL, NULL, NULL, request_file, request_line, result_file, result_line
    FROM second_chance
    UNION ALL
    -- ... or each leftover line alone: results (1) before requests (2), each by (stem, file, line)
    SELECT 1, l.folder, l.custom_id, NULL, NULL, CASE WHEN l.result_file IS NOT NULL THEN 1 ELSE 2 END, l.stem,
           coalesce(l.result_file, l.request_file), coalesce(l.result_line, l.request_line),
           l.request_file, l.request_line, l.result_file, l.result_line
    FROM leftover l ANTI JOIN second_chance s ON l.folder = s.folder AND l.custom_id = s.custom_id
),
records AS (
    SELECT side, source_file, source_line, record FROM read_parquet($files) WHERE format = $format
)
SELECT q.record AS request, r.record AS result,
       coalesce(p.result_file, p.request_file) AS source_file, coalesce(p.result_line, p.request_line) AS source_line
FROM plan p
LEFT JOIN records q ON q.side = 'requests' AND q.source_file = p.request_file AND q.source_line = p.request_line
LEFT JOIN records r ON r.side = 'results' AND r.source_file = p.result_file AND r.source_line = p.result_line
ORDER BY p.phase, p.folder, p.k1, p.k2, p.n, p.kind, p.k3, p.k4, p.k5;
