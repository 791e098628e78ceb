"""Metrics of the memory API (`POST /v1/memory-queries`, `POST /v1/memory-records`), on the manager's
registry: queries by result, their latency, records written. `MemoryService` counts them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["QUERY_RESULTS", "MemoryMetrics"]

QUERY_RESULTS = ("ok", "empty", "invalid", "not_found", "unavailable", "error")
"""ok: rows returned; empty: none matched; invalid: 400; not_found: 404; unavailable: 503; error: 500."""

_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class MemoryMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        registry = registry if registry is not None else CollectorRegistry()
        self.queries = Counter(
            "jangar_memory_queries_total",
            "Memory queries, by result (ok, empty, invalid, not_found, unavailable, error).",
            ["result"],
            registry=registry,
        )
        self.query_seconds = Histogram(
            "jangar_memory_query_duration_seconds",
            "Duration of one memory query (Secret read, connect, select), by mode (embedding, key, text).",
            ["mode"],
            buckets=_SECONDS_BUCKETS,
            registry=registry,
        )
        self.records_written = Counter(
            "jangar_memory_records_written_total",
            "Memory records upserted into memory_embeddings.",
            ["namespace"],
            registry=registry,
        )
        self.writes = Counter(
            "jangar_memory_writes_total",
            "Memory record writes (requests), by result (ok, invalid, not_found, unavailable, error).",
            ["result"],
            registry=registry,
        )
