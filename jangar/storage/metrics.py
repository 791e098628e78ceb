"""Prometheus metrics for run records, so a database outage is visible without reading logs.

Metrics are created once per registry (tests and the server may each bring their own), because
prometheus-client refuses to register the same name twice in one registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from threading import Lock
from weakref import WeakKeyDictionary

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True, slots=True)
class RecorderMetrics:
    """The run-record metrics registered in one registry."""

    pending: Gauge
    written: Counter
    write_errors: Counter
    rejected: Counter
    database_up: Gauge
    write_seconds: Histogram
    capacity: Gauge
    refused: Counter


_lock = Lock()
_by_registry: WeakKeyDictionary[CollectorRegistry, RecorderMetrics] = WeakKeyDictionary()


def recorder_metrics(registry: CollectorRegistry | None = None) -> RecorderMetrics:
    """Return the run-record metrics of ``registry`` (default: the global registry), creating them once."""
    target = REGISTRY if registry is None else registry
    with _lock:
        found = _by_registry.get(target)
        if found is not None:
            return found
        metrics = RecorderMetrics(
            pending=Gauge(
                "jangar_run_records_pending",
                "Run records accepted by the recorder and not yet written to Postgres.",
                registry=target,
            ),
            written=Counter(
                "jangar_run_records_written_total",
                "Run records written to Postgres.",
                registry=target,
            ),
            write_errors=Counter(
                "jangar_run_record_write_errors_total",
                "Failed attempts to write a batch of run records (each is retried).",
                registry=target,
            ),
            rejected=Counter(
                "jangar_run_records_rejected_total",
                "Run records Postgres refused as invalid data; they are logged and skipped.",
                registry=target,
            ),
            database_up=Gauge(
                "jangar_database_up",
                "1 when the last write to Postgres succeeded, 0 while writes fail.",
                registry=target,
            ),
            write_seconds=Histogram(
                "jangar_run_record_write_duration_seconds",
                "Time to write one batch of run records.",
                registry=target,
            ),
            capacity=Gauge(
                "jangar_run_records_buffer_capacity",
                "The most run records the recorder buffers in memory (JANGAR_RECORDS_BUFFER_MAX).",
                registry=target,
            ),
            refused=Counter(
                "jangar_run_records_refused_total",
                "Run record offers refused because the buffer was full or the schema missing; "
                "nothing is lost: the controller offers the run's state again on a later reconcile.",
                registry=target,
            ),
        )
        _by_registry[target] = metrics
        return metrics
