-- name: records
-- params: first_uid, last_uid
-- description: Where the kept examples of one bucket (uids first_uid..last_uid) are written.
SELECT uid, rel, byte_offset FROM placed WHERE uid BETWEEN $first_uid AND $last_uid
