-- name: examples_table
-- params: examples
-- description: The small columns of every example (no hashes, bands or records), with a dense index
--   `idx` for the connected-components arrays.
CREATE TABLE ex AS
SELECT row_number() OVER (ORDER BY uid) - 1 AS idx, uid, example_id, final_request_id, ts, rank_positive, rank_ts,
       sort_ts, task_type, slug, session_id, tokens, assistant_tokens, redactions, exact_key, prompt_key, split_key,
       n_hashes, leak_n, record_bytes
FROM read_parquet($examples)
