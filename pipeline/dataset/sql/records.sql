-- name: records
-- params: -
-- description: Where every kept example is written, in uid order: a bucket's examples (uids
--   bucket << 32 | position) are one run of it.
SELECT uid, rel, byte_offset FROM placed ORDER BY uid
