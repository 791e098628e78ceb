"""Admission wired to the cache: who may start now, who waits (and where), who is rejected.

`jangar.admission` decides over a snapshot of `RunRecord`s, built from the informer cache (all watched
namespaces) by `jangar.admission.snapshot` — the same code the submission surfaces use for their early
refusal, so both count the same runs (a run whose Job exists holds capacity; held and deleting runs do not
wait).

The in-process `AdmissionLedger` reserves capacity the moment a run is admitted, so several workers deciding
before the cache shows the first one's status write still never exceed a limit. When a run finishes or is
deleted, `wake_mapper` re-decides and enqueues exactly the waiting runs that may start now — no sweep, no
waiting for an unrelated event. Waiting runs are also requeued on a timer (`WAIT_REQUEUE_SECONDS`, or when
a rate window frees a slot), which refreshes their queue position.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client import Counter as PromCounter

from jangar.admission import AdmissionLedger, AdmissionLimits, RunRecord, Verdict
from jangar.admission.model import RunKey
from jangar.admission.snapshot import held_for_admission, snapshot
from jangar.api.contract import is_terminal
from jangar.controllers.kinds import AGENTRUNS
from jangar.runtime import CacheReader, JsonObject, Request

__all__ = ["AdmissionGate", "GateMetrics", "held_for_admission"]

WAKE_COALESCE_SECONDS = 0.05


class GateMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.depth = Gauge(
            "jangar_agentrun_queue_depth",
            "AgentRuns waiting for admission, per scope (namespace or cluster).",
            ["scope", "namespace"],
            registry=registry,
        )
        self.depth_histogram = Histogram(
            "jangar_agents_queue_depth",
            "Queue depth seen at each admission decision (the reference's name, for its dashboard).",
            ["scope", "namespace"],
            buckets=(0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
            registry=registry,
        )
        self.admissions = PromCounter(
            "jangar_agentrun_admissions_total",
            "Admission decisions for AgentRuns by outcome (admitted, queued, rejected).",
            ["namespace", "outcome"],
            registry=registry,
        )


class AdmissionGate:
    def __init__(
        self,
        cache: CacheReader,
        limits: AdmissionLimits,
        *,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._cache = cache
        self.ledger = AdmissionLedger(limits)
        self._clock = clock
        self.metrics = GateMetrics(registry)
        self._namespaces_seen: set[str] = set()
        self._enqueue: Callable[[Request], None] | None = None
        self._wake_scheduled = False

    def snapshot(self) -> list[RunRecord]:
        """Every AgentRun the cache holds, as admission sees it (`jangar.admission.snapshot`)."""
        return snapshot(self._cache, self._clock)

    def admit(self, run: JsonObject) -> Verdict:
        """Decide for `run` (and reserve its capacity when admitted)."""
        meta = run["metadata"]
        key: RunKey = (str(meta.get("namespace") or "default"), str(meta["name"]))
        records = self.snapshot()
        if not any(r.key == key for r in records):
            # Held runs are left out of the snapshot; a run asking to be admitted is no longer held.
            records.append(dataclasses.replace(RunRecord.from_run(run), phase=""))
        before = next((r for r in records if r.key == key), None)
        was_admitted = key in self.ledger.reservations or (before is not None and before.active)
        was_queued = before is not None and before.phase == "Queued"
        verdict = self.ledger.admit(key, records, self._clock())
        self._observe(records, key, verdict, was_admitted=was_admitted, was_queued=was_queued)
        return verdict

    def release(self, namespace: str, name: str) -> None:
        self.ledger.release((namespace, name))

    def _observe(
        self, records: list[RunRecord], key: RunKey, verdict: Verdict, *, was_admitted: bool, was_queued: bool
    ) -> None:
        """Count decisions that change a run's state (a retried reconcile of an admitted run, or another pass
        over a run already Queued, is not a new admission), and refresh the queue-depth gauges."""
        from jangar.admission import Admit, Rejection, Waiting

        if isinstance(verdict, Admit):
            outcome = "" if was_admitted else "admitted"
        elif isinstance(verdict, Waiting):
            outcome = "" if was_queued else "queued"
        elif isinstance(verdict, Rejection):
            outcome = "rejected"
        else:
            outcome = ""
        if outcome:
            self.metrics.admissions.labels(key[0], outcome).inc()
        reserved = self.ledger.reservations
        waiting = [r for r in records if r.waiting and r.key not in reserved]
        if isinstance(verdict, Admit | Rejection):
            waiting = [r for r in waiting if r.key != key]
        per_ns = Counter(r.namespace for r in waiting)
        self._namespaces_seen.update(per_ns)
        for ns in self._namespaces_seen:
            self.metrics.depth.labels("namespace", ns).set(per_ns.get(ns, 0))
        self.metrics.depth.labels("cluster", "").set(len(waiting))
        self.metrics.depth_histogram.labels("namespace", key[0]).observe(per_ns.get(key[0], 0))
        self.metrics.depth_histogram.labels("cluster", "").observe(len(waiting))

    def attach(self, enqueue: Callable[[Request], None]) -> None:
        """Deliver wake-ups through `enqueue` (the AgentRun controller's queue), coalesced: a burst of
        finishing runs (or the initial list at start-up) costs one admission decision, not one per event."""
        self._enqueue = enqueue

    def wake_mapper(self, obj: JsonObject) -> list[Request]:
        """On a run finishing or disappearing: the waiting runs that may start now.

        With `attach`, the decision runs once, shortly after the first such event, and its runs are
        enqueued directly; without it the decision is made here, per event.
        """
        meta = obj.get("metadata") or {}
        phase = (obj.get("status") or {}).get("phase")
        gone = self._cache.get(AGENTRUNS, str(meta.get("name")), meta.get("namespace"), copy=False) is None
        if not is_terminal(phase) and not gone:
            return []
        if self._enqueue is None:
            return self.runs_to_wake()
        if not self._wake_scheduled:
            self._wake_scheduled = True
            asyncio.get_running_loop().call_later(WAKE_COALESCE_SECONDS, self._wake)
        return []

    def _wake(self) -> None:
        self._wake_scheduled = False
        if self._enqueue is not None:
            for request in self.runs_to_wake():
                self._enqueue(request)

    def runs_to_wake(self) -> list[Request]:
        records = self.snapshot()
        if not any(r.waiting for r in records):
            return []
        decision = self.ledger.decide(records, self._clock())
        return [Request(ns, name) for ns, name in decision.admitted]
