-- name: strip_prefix_macro
-- params: -
-- description: strip_prefix(x, ws): the first 256 characters of x with the characters of ws stripped
--   from both ends, such that strip_prefix(x) = strip_prefix(x stripped). The left strip reads the
--   first 512 characters only, unless x starts with more than 256 stripped characters; the right
--   strip then needs only the 256 kept. (A full strip of every text scanned it end to end, 10x slower.)
CREATE OR REPLACE TEMP MACRO strip_prefix(x, ws) AS rtrim(left(
    CASE WHEN strlen(x) <= 512 OR length(ltrim(left(x, 512), ws)) >= 256 THEN ltrim(left(x, 512), ws)
         ELSE ltrim(x, ws) END,
    256), ws)
