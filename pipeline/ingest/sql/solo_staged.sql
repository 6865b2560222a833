-- name: solo_staged
-- params: solo
-- description: The staged rows too large to stage with others (each in a file of its own under the
--   staging folder's `solo/`): the commit moves their files into the store instead of reading them.
CREATE TEMP TABLE solo_staged AS
SELECT * FROM staged_keys WHERE starts_with(_file, $solo);
