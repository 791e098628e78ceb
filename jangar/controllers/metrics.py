"""The reference's AgentRun metrics, kept by name so the chart's dashboard (agents-observability.json)
works unchanged: outcomes by runtime and the reconcile duration in milliseconds. The runtime's own
`controller_runtime_*` series cover queues and reconcile results.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from jangar.controllers.storage_metrics import StorageMetrics

__all__ = ["RunMetrics"]

_MS_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)


class RunMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.outcomes = Counter(
            "jangar_agent_run_outcomes_total",
            "AgentRuns that reached a terminal phase, by outcome, runtime and namespace.",
            # namespace: beyond the reference's labels, so the dashboard's namespace filter matches
            ["outcome", "runtime", "namespace"],
            registry=registry,
        )
        self.reconcile_ms = Histogram(
            "jangar_reconcile_duration_ms",
            "Duration of one AgentRun reconcile, in milliseconds.",
            ["kind", "namespace"],
            buckets=_MS_BUCKETS,
            registry=registry,
        )
        # 0.9.29's retention delete counters (agents_agentrun_retention_*): runs deleted when their
        # ttlSecondsAfterFinished elapsed, and deletes the API server refused (the run is retried)
        self.retention_deletes = Counter(
            "jangar_agentrun_retention_deletes_total",
            "Finished AgentRuns deleted because their retention (ttlSecondsAfterFinished) elapsed.",
            ["namespace"],
            registry=registry,
        )
        self.retention_delete_errors = Counter(
            "jangar_agentrun_retention_delete_errors_total",
            "Retention deletes of AgentRuns that failed (the reconcile is retried).",
            ["namespace"],
            registry=registry,
        )
        # issue 11: run artifacts recorded / truncated (shared with the Artifact controller's)
        self.storage = StorageMetrics.for_registry(registry)
