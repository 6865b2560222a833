-- name: tasks_summary
-- params: -
-- description: task_types (schemas/labels.py): one row per task type, largest first, `other`
--   last. Needs TEMP TABLEs labels, features, task_assignment, user_skeletons, task_versions and
--   costs (empty when audit.cost wrote no request_costs.parquet: spend columns are then null).
--   repetitiveness = mean of (a) the input-template share: system prompt (when it defines the
--   type) plus recurring user lines, over all prompt text; (b) output-format consistency: for
--   mostly-JSON types json_output_rate x json_keyset_stability, for mostly-tool-call types the
--   tool-call rate, else 1 / (1 + output_length_cv).
WITH l AS (
    SELECT
        l.*,
        f.input_tokens,
        f.output_tokens,
        f.answered,
        f.has_text,
        f.is_tool_call,
        f.answer_is_json,
        f.answer_keyset,
        a.basis,
        (CASE WHEN a.basis LIKE 'system_prompt%' THEN f.system_chars ELSE 0 END + coalesce(s.template_chars, 0))
            / nullif(f.system_chars + length(f.first_user_masked), 0) AS template_share,
        c.cost_usd
    FROM labels l
    JOIN features f USING (request_id)
    JOIN task_assignment a USING (request_id)
    LEFT JOIN user_skeletons s USING (request_id)
    LEFT JOIN costs c USING (request_id)
),
totals AS (
    SELECT count(*) AS requests, sum(input_tokens + output_tokens) AS tokens, CAST(sum(CAST(cost_usd AS DECIMAL(38, 18))) AS DOUBLE) AS spend
    FROM l
),
keysets AS (
    SELECT task_type, max(n) / sum(n) AS stability
    FROM (SELECT task_type, answer_keyset, count(*) AS n FROM l WHERE answer_keyset IS NOT NULL GROUP BY ALL)
    GROUP BY task_type
),
models AS (
    SELECT task_type, list(model ORDER BY n DESC, model) AS models
    FROM (SELECT task_type, model, count(*) AS n FROM l WHERE model IS NOT NULL GROUP BY ALL)
    GROUP BY task_type
),
versions AS (
    SELECT task_type, count(*) AS n FROM task_versions GROUP BY task_type
),
per_type AS (
    SELECT
        task_type,
        min(task_label) AS label,
        min(basis) AS basis,
        count(*) AS requests,
        sum(input_tokens) AS input_tokens,
        sum(output_tokens) AS output_tokens,
        CAST(sum(CAST(cost_usd AS DECIMAL(38, 18))) AS DOUBLE) AS spend_usd,
        count(DISTINCT tools_fp) AS tool_sets,
        quantile_cont(input_tokens, 0.5) AS input_tokens_p50,
        quantile_cont(input_tokens, 0.9) AS input_tokens_p90,
        quantile_cont(output_tokens, 0.5) FILTER (WHERE answered) AS output_tokens_p50,
        quantile_cont(output_tokens, 0.9) FILTER (WHERE answered) AS output_tokens_p90,
        avg(output_tokens) FILTER (WHERE answered) AS output_tokens_mean,
        avg(CAST(answer_is_json AS INTEGER)) FILTER (WHERE answered AND has_text) AS json_output_rate,
        avg(CAST(is_tool_call AS INTEGER)) FILTER (WHERE answered) AS tool_call_rate,
        stddev_pop(output_tokens ORDER BY request_id) FILTER (WHERE answered)
            / nullif(avg(output_tokens) FILTER (WHERE answered), 0) AS output_length_cv,
        avg(template_share ORDER BY request_id) AS template_share,
        sum(CAST(regenerated AS INTEGER)) / nullif(sum(CAST(answered AS INTEGER)), 0) AS regeneration_rate,
        avg(CAST(is_retry AS INTEGER)) AS retry_rate,
        sum(CAST(edited AS INTEGER)) / nullif(sum(CAST(answered AS INTEGER)), 0) AS edit_rate,
        count(feedback_rating) AS feedback_count,
        avg(CAST(negative_feedback AS INTEGER)) FILTER (WHERE feedback_rating IS NOT NULL) AS negative_feedback_rate,
        avg(CAST(failed AS INTEGER)) AS failed_rate,
        sum(CAST(clean_example AS INTEGER)) AS clean_examples,
        min(ts) AS first_seen,
        max(ts) AS last_seen
    FROM l
    GROUP BY task_type
),
scored AS (
    SELECT
        p.*,
        k.stability AS json_keyset_stability,
        m.models,
        coalesce(v.n, 0) AS system_versions,
        CASE
            WHEN coalesce(p.json_output_rate, 0) >= 0.5 THEN p.json_output_rate * coalesce(k.stability, 0)
            WHEN coalesce(p.tool_call_rate, 0) >= 0.5 THEN p.tool_call_rate
            ELSE 1 / (1 + coalesce(p.output_length_cv, 1))
        END AS output_consistency
    FROM per_type p
    LEFT JOIN keysets k USING (task_type)
    LEFT JOIN models m USING (task_type)
    LEFT JOIN versions v USING (task_type)
)
SELECT
    s.task_type,
    s.label,
    s.basis,
    s.requests,
    s.requests / t.requests AS share_requests,
    sum(s.requests) OVER (ORDER BY s.task_type = 'other', s.requests DESC, s.task_type
                          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) / t.requests AS cumulative_share_requests,
    s.input_tokens,
    s.output_tokens,
    (s.input_tokens + s.output_tokens) / nullif(t.tokens, 0) AS share_tokens,
    s.spend_usd,
    s.spend_usd / nullif(t.spend, 0) AS share_spend,
    s.models,
    s.system_versions,
    s.tool_sets,
    s.input_tokens_p50,
    s.input_tokens_p90,
    s.output_tokens_p50,
    s.output_tokens_p90,
    s.output_tokens_mean,
    s.json_output_rate,
    s.json_keyset_stability,
    s.tool_call_rate,
    s.output_length_cv,
    round((coalesce(s.template_share, 0) + s.output_consistency) / 2, 4) AS repetitiveness,
    s.regeneration_rate,
    s.retry_rate,
    s.edit_rate,
    s.feedback_count,
    s.negative_feedback_rate,
    s.failed_rate,
    s.clean_examples,
    s.first_seen,
    s.last_seen
FROM scored s, totals t
ORDER BY s.task_type = 'other', s.requests DESC, s.task_type
