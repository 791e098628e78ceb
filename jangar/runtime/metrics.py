"""Prometheus metrics with controller-runtime's names and labels, so existing dashboards work.

Each :class:`RuntimeMetrics` owns a dedicated :class:`~prometheus_client.CollectorRegistry`
(the process-wide default registry would add ``python_gc_*`` series and make two managers in
one process, as in tests, collide). ``_created`` series are disabled process-wide on import:
controller-runtime does not export them and they double the series count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from jangar.runtime.metric_names import TwinNames

prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

RECONCILE_TIME_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9,
    1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
)  # fmt: skip
WORKQUEUE_DURATION_BUCKETS = tuple(1e-8 * 10**k for k in range(12))
RECONCILE_RESULTS = ("success", "error", "requeue", "requeue_after")

Probe = Callable[[], tuple[float, float]]


class _ProcessingCollector(Collector):
    """Computes the unfinished-work gauges at scrape time instead of on a 500 ms timer."""

    def __init__(self) -> None:
        self.probes: dict[str, Probe] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        unfinished = GaugeMetricFamily(
            "workqueue_unfinished_work_seconds",
            "Seconds of work in progress not yet observed by work_duration; large values mean stuck workers.",
            labels=["name", "controller"],
        )
        longest = GaugeMetricFamily(
            "workqueue_longest_running_processor_seconds",
            "Seconds the longest running processor of the workqueue has been running.",
            labels=["name", "controller"],
        )
        for name, probe in list(self.probes.items()):
            total, longest_running = probe()
            unfinished.add_metric([name, name], total)
            longest.add_metric([name, name], longest_running)
        yield unfinished
        yield longest

    def describe(self) -> list[GaugeMetricFamily]:
        return []


class RuntimeMetrics:
    """All runtime metrics, registered on one registry that the manager serves at ``/metrics``."""

    def __init__(self, registry: CollectorRegistry | None = None, *, twin_names: bool = True) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.exposition = TwinNames(self.registry, enabled=twin_names)
        """What :meth:`render` serves: the registry plus the `agents_*` twins of its `jangar_*` families."""
        r = self.registry
        self.reconcile_total = Counter(
            "controller_runtime_reconcile_total",
            "Total number of reconciliations per controller",
            ["controller", "result"],
            registry=r,
        )
        self.reconcile_errors_total = Counter(
            "controller_runtime_reconcile_errors_total",
            "Total number of reconciliation errors per controller",
            ["controller"],
            registry=r,
        )
        self.terminal_reconcile_errors_total = Counter(
            "controller_runtime_terminal_reconcile_errors_total",
            "Total number of terminal reconciliation errors per controller",
            ["controller"],
            registry=r,
        )
        self.reconcile_timeouts_total = Counter(
            "controller_runtime_reconcile_timeouts_total",
            "Total number of reconciliation timeouts per controller",
            ["controller"],
            registry=r,
        )
        self.reconcile_time_seconds = Histogram(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            ["controller"],
            buckets=RECONCILE_TIME_BUCKETS,
            registry=r,
        )
        self.max_concurrent_reconciles = Gauge(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller",
            ["controller"],
            registry=r,
        )
        self.active_workers = Gauge(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            ["controller"],
            registry=r,
        )
        self.workqueue_depth = Gauge(
            "workqueue_depth", "Current depth of workqueue", ["name", "controller", "priority"], registry=r
        )
        self.workqueue_adds_total = Counter(
            "workqueue_adds_total",
            "Total number of adds handled by workqueue",
            ["name", "controller"],
            registry=r,
        )
        self.workqueue_queue_duration_seconds = Histogram(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested",
            ["name", "controller"],
            buckets=WORKQUEUE_DURATION_BUCKETS,
            registry=r,
        )
        self.workqueue_work_duration_seconds = Histogram(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes.",
            ["name", "controller"],
            buckets=WORKQUEUE_DURATION_BUCKETS,
            registry=r,
        )
        self.workqueue_retries_total = Counter(
            "workqueue_retries_total",
            "Total number of retries handled by workqueue",
            ["name", "controller"],
            registry=r,
        )
        self._processing = _ProcessingCollector()
        r.register(self._processing)
        self.rest_client_requests_total = Counter(
            "rest_client_requests_total",
            "Number of HTTP requests, partitioned by status code, method, and host.",
            ["code", "method", "host"],
            registry=r,
        )
        self.rest_client_request_duration_seconds = Histogram(
            "rest_client_request_duration_seconds",
            "Request latency in seconds. Broken down by verb, and host.",
            ["verb", "host"],
            buckets=(0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0),
            registry=r,
        )
        self.leader_election_master_status = Gauge(
            "leader_election_master_status",
            "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 master.",
            ["name"],
            registry=r,
        )

    def init_controller(self, name: str, max_concurrent_reconciles: int) -> None:
        """Zero-initialise every label combination of a controller, like controller-runtime."""
        for result in RECONCILE_RESULTS:
            self.reconcile_total.labels(name, result)
        self.reconcile_errors_total.labels(name)
        self.terminal_reconcile_errors_total.labels(name)
        self.reconcile_timeouts_total.labels(name)
        self.reconcile_time_seconds.labels(name)
        self.max_concurrent_reconciles.labels(name).set(max_concurrent_reconciles)
        self.active_workers.labels(name).set(0)

    def queue_metrics(self, name: str) -> PrometheusQueueMetrics:
        """Metrics for a named work queue (``name`` and ``controller`` labels both carry it)."""
        return PrometheusQueueMetrics(self, name)

    def render(self) -> bytes:
        """The text exposition of this registry and its twin names (what ``/metrics`` serves)."""
        return bytes(prometheus_client.generate_latest(self.exposition))


class PrometheusQueueMetrics:
    """:class:`jangar.runtime.workqueue.QueueMetrics` backed by :class:`RuntimeMetrics`."""

    def __init__(self, metrics: RuntimeMetrics, name: str) -> None:
        self._metrics = metrics
        self._name = name
        self._depth = metrics.workqueue_depth.labels(name, name, "")
        self._adds = metrics.workqueue_adds_total.labels(name, name)
        self._queue_duration = metrics.workqueue_queue_duration_seconds.labels(name, name)
        self._work_duration = metrics.workqueue_work_duration_seconds.labels(name, name)
        self._retries = metrics.workqueue_retries_total.labels(name, name)

    def added(self) -> None:
        self._adds.inc()
        self._depth.inc()

    def got(self, queued_seconds: float) -> None:
        self._depth.dec()
        self._queue_duration.observe(queued_seconds)

    def done(self, work_seconds: float) -> None:
        self._work_duration.observe(work_seconds)

    def retried(self) -> None:
        self._retries.inc()

    def watch_processing(self, probe: Probe) -> None:
        self._metrics._processing.probes[self._name] = probe
