"""Workspace and Artifact metrics (issue 11), one set per manager registry.

Events are counted where they happen: a Workspace expiring (`WorkspaceReconciler`), a finished run's
Artifacts created and a run's artifact list truncated (the AgentRun `PlanApplier`), an Artifact deleted at
the end of its `lifecycle.ttlDays` (`ArtifactReconciler`). States are read from the informer cache at
scrape time (`CacheCollector`): Workspaces by phase, Artifacts by phase and the bytes they record — no
bookkeeping that could drift from what the API server holds.

`StorageMetrics.for_registry(registry)` returns the same instance for the same registry, so the
controllers that share a manager share the series (a metric name can be registered once per registry).
"""

from __future__ import annotations

import weakref
from collections import Counter as Tally
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from jangar.controllers.kinds import ARTIFACTS, WORKSPACES
from jangar.runtime import CacheReader, InformerNotRegistered

__all__ = ["CacheCollector", "StorageMetrics", "artifact_bytes"]

_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, StorageMetrics] = weakref.WeakKeyDictionary()


def artifact_bytes(artifact: Mapping[str, Any]) -> int:
    """The size an Artifact records (status, else spec), 0 when unknown."""
    for part in ("status", "spec"):
        size = (artifact.get(part) or {}).get("sizeBytes")
        if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
            return size
    return 0


class StorageMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.workspace_expirations = Counter(
            "jangar_workspace_expirations_total",
            "Workspaces that reached phase Expired (ttlSeconds elapsed; their claim is deleted).",
            ["namespace"],
            registry=registry,
        )
        self.artifacts_recorded = Counter(
            "jangar_artifacts_recorded_total",
            "Artifact objects created for finished AgentRuns (one per present reported artifact).",
            ["namespace"],
            registry=registry,
        )
        self.artifact_bytes_recorded = Counter(
            "jangar_artifacts_recorded_bytes_total",
            "Bytes the created run Artifacts record (their sizeBytes; jangar copies no content).",
            ["namespace"],
            registry=registry,
        )
        self.artifacts_truncated = Counter(
            "jangar_artifacts_truncated_total",
            "AgentRuns whose reported artifacts exceeded JANGAR_ARTIFACTS_MAX_PER_RUN (ArtifactsTruncated).",
            ["namespace"],
            registry=registry,
        )
        self.artifacts_expired = Counter(
            "jangar_artifacts_expired_total",
            "Artifacts deleted because their lifecycle.ttlDays elapsed.",
            ["namespace"],
            registry=registry,
        )
        self._collector: CacheCollector | None = None

    @classmethod
    def for_registry(cls, registry: CollectorRegistry | None) -> StorageMetrics:
        if registry is None:
            return cls(CollectorRegistry())
        found = _BY_REGISTRY.get(registry)
        if found is None:
            found = _BY_REGISTRY[registry] = cls(registry)
        return found

    def watch(self, cache: CacheReader) -> None:
        """Serve the cache-derived gauges (once per registry)."""
        if self._collector is None:
            self._collector = CacheCollector(cache)
            self.registry.register(self._collector)

    def recorded(self, artifact: Mapping[str, Any]) -> None:
        ns = str((artifact.get("metadata") or {}).get("namespace") or "")
        self.artifacts_recorded.labels(ns).inc()
        self.artifact_bytes_recorded.labels(ns).inc(artifact_bytes(artifact))


class CacheCollector(Collector):
    """`jangar_workspaces{namespace,phase}`, `jangar_artifacts{namespace,phase}` and
    `jangar_artifact_bytes{namespace}`, from the informer cache at scrape time."""

    def __init__(self, cache: CacheReader) -> None:
        self.cache = cache

    def _list(self, ref: Any) -> list[Mapping[str, Any]]:
        try:
            return list(self.cache.list(ref, copy=False))
        except InformerNotRegistered:
            return []

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "jangar_workspaces", "Workspaces by phase (from the cache).", labels=["namespace", "phase"]
            ),
            GaugeMetricFamily(
                "jangar_artifacts", "Artifacts by phase (from the cache).", labels=["namespace", "phase"]
            ),
            GaugeMetricFamily(
                "jangar_artifact_bytes",
                "Bytes recorded by the Artifacts that exist (their sizeBytes).",
                labels=["namespace"],
            ),
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield from self._families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        workspaces, artifacts, size = self._families()
        for ref, family in ((WORKSPACES, workspaces), (ARTIFACTS, artifacts)):
            tally: Tally[tuple[str, str]] = Tally()
            for obj in self._list(ref):
                ns = str((obj.get("metadata") or {}).get("namespace") or "")
                tally[(ns, str((obj.get("status") or {}).get("phase") or "Pending"))] += 1
            for (ns, phase), count in sorted(tally.items()):
                family.add_metric([ns, phase], count)
        by_ns: Tally[str] = Tally()
        for obj in self._list(ARTIFACTS):
            by_ns[str((obj.get("metadata") or {}).get("namespace") or "")] += artifact_bytes(obj)
        for ns, total in sorted(by_ns.items()):
            size.add_metric([ns], total)
        yield workspaces
        yield artifacts
        yield size
