-- name: leaks_examples
-- params: -
-- description: The first 20 leaking pairs (by eval line, then train line), for the manifest.
SELECT eval_index, train_index, jaccard FROM leaks ORDER BY eval_index, train_index LIMIT 20
