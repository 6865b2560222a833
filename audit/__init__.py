"""Stage 2: metrics over the normalized Parquet store (cache, tokens, cost, tasks, signals)."""
