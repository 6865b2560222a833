-- name: token_totals
-- params: max_tokens
-- description: Token totals of the written examples; billed training tokens cap each at the limit.
SELECT coalesce(sum(tokens) FILTER (WHERE split = 'train'), 0) AS train,
       coalesce(sum(tokens) FILTER (WHERE split = 'eval'), 0) AS eval,
       coalesce(sum(assistant_tokens) FILTER (WHERE split = 'train'), 0) AS train_assistant,
       coalesce(max(tokens), 0) AS max_example,
       coalesce(sum(least(tokens, $max_tokens)) FILTER (WHERE split = 'train'), 0) AS train_capped
FROM placed
