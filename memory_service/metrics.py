"""Prometheus metrics recorded by the service itself (any process: API, worker, CLI).

They live on prometheus-client's default registry. The API exposes them at `/metrics`
(`api/metrics.py` adds request metrics and the job queue's depth); a worker exposes them
on its own port (`memory-service worker --metrics-port`).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS_INGESTED = Counter(
    "memory_events_ingested_total", "Events accepted by ingest (re-sent ids included)", ["tenant"]
)
EVENTS_NEW = Counter("memory_events_stored_total", "Events newly stored by ingest (re-sent ids excluded)", ["tenant"])
EVENTS_COMPRESSED = Counter("memory_events_compressed_total", "Events compressed into memory units")
UNITS_CREATED = Counter("memory_units_created_total", "Memory units written by compression")
COMPRESSION_INPUT_TOKENS = Counter(
    "memory_compression_input_tokens_total", "Tokens (cl100k) of the events compressed"
)
COMPRESSION_OUTPUT_TOKENS = Counter(
    "memory_compression_output_tokens_total", "Tokens (cl100k) of the units they became"
)
COMPRESSION_RATIO = Histogram(
    "memory_compression_ratio",
    "Unit tokens / event tokens of one compression run",
    buckets=(0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0),
)
CONTEXT_TOKENS_RETURNED = Histogram(
    "memory_context_tokens_returned",
    "Tokens of the context returned by one query",
    buckets=(0, 16, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768),
)
CONTEXT_HISTORY_TOKENS_TOTAL = Counter(
    "memory_context_history_tokens_total",
    "Tokens of the full history of the queried scopes, summed over queries (compare with"
    " memory_context_tokens_returned_sum); only counted when the context result reports it",
)
CONTEXT_EMPTY = Counter("memory_context_empty_total", "Queries answered with an empty context (nothing relevant)")
JOBS_FAILED = Counter("memory_jobs_failed_total", "Jobs that raised, by kind (each attempt counts)", ["kind"])


def record_compression(events: int, units: int, input_tokens: int, output_tokens: int) -> None:
    if not events:
        return
    EVENTS_COMPRESSED.inc(events)
    UNITS_CREATED.inc(units)
    COMPRESSION_INPUT_TOKENS.inc(input_tokens)
    COMPRESSION_OUTPUT_TOKENS.inc(output_tokens)
    if input_tokens:
        COMPRESSION_RATIO.observe(output_tokens / input_tokens)


def record_context(tokens: int, empty: bool, history_tokens: int | None = None) -> None:
    CONTEXT_TOKENS_RETURNED.observe(tokens)
    if history_tokens is not None:
        CONTEXT_HISTORY_TOKENS_TOTAL.inc(history_tokens)
    if empty:
        CONTEXT_EMPTY.inc()
