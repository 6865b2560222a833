"""Contracts between stages: the normalized request record and the files each stage writes."""

from schemas.logs import (
    CACHE_BREAKPOINT,
    MESSAGE,
    PARTITION_COLUMN,
    REQUEST_COLUMNS,
    REQUEST_SCHEMA,
    SCHEMA_VERSION,
    TOOL_CALL,
    UNDATED,
    USAGE_INPUT_BUCKETS,
)

__all__ = [
    "CACHE_BREAKPOINT",
    "MESSAGE",
    "PARTITION_COLUMN",
    "REQUEST_COLUMNS",
    "REQUEST_SCHEMA",
    "SCHEMA_VERSION",
    "TOOL_CALL",
    "UNDATED",
    "USAGE_INPUT_BUCKETS",
]
