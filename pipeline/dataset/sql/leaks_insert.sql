-- name: leaks_insert
-- params: -
-- description: Appends one chunk of verified eval-train pairs (`part`, registered from Arrow) to `leaks`.
INSERT INTO leaks SELECT eval_index, train_index, jaccard FROM part
