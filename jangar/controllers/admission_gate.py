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

The rate window (`jangar.admission.window.RateWindow`) is fed from every AgentRun event carrying an
`admittedAt` inside the window (`wake_mapper` sees them all) and from the ledger's own admissions, and kept
durably in one ConfigMap per namespace (`ADMISSION_WINDOW_CONFIGMAP`): written by server-side apply at most
`WINDOW_FLUSH_SECONDS` after an admission (one write for a burst), and read back once, before the first
admission a (newly elected) controller makes (`ensure_loaded`). Only the leader reconciles, so only the
leader writes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import structlog
from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client import Counter as PromCounter

from jangar.admission import AdmissionLedger, AdmissionLimits, RunRecord, Verdict
from jangar.admission.model import RunKey
from jangar.admission.snapshot import RecordMemo, ensure_admission_index, held_for_admission, snapshot
from jangar.admission.window import WINDOW_DATA_KEY, RateWindow, Stamp, parse_stamps, serialize_stamps
from jangar.api.contract import ADMISSION_WINDOW_CONFIGMAP, LABEL_ADMISSION_WINDOW, is_terminal
from jangar.conditions import parse_time
from jangar.controllers.concurrency_metrics import ActiveConcurrency
from jangar.controllers.kinds import AGENTRUNS, CONFIGMAPS
from jangar.runtime import CacheReader, Client, JsonObject, Request
from jangar.scheduler.contract import repository_of

__all__ = ["AdmissionGate", "GateMetrics", "held_for_admission"]

log = structlog.get_logger("jangar.controllers.admission")

WAKE_COALESCE_SECONDS = 0.05
WINDOW_FLUSH_SECONDS = 0.2
"""How long admissions are gathered before the rate window's record is written (one write per burst)."""
WINDOW_RETRY_SECONDS = 2.0
WINDOW_FIELD_MANAGER = "jangar-admission"


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
        # 0.9.29's agents_rate_limit_rejections_total (docs/metrics.md): runs newly held by a rate limit
        self.rate_limit_rejections = PromCounter(
            "jangar_rate_limit_rejections_total",
            "AgentRuns held back by an admission rate limit (counted once per run and wait).",
            ["namespace"],
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
        client: Client | None = None,
        namespaces: Sequence[str] | None = None,
    ) -> None:
        """`client`: where the rate window's durable record is read and written (None: memory only, for unit
        tests); `namespaces`: the watched namespaces (None: all), where the records are looked for."""
        self._cache = cache
        ensure_admission_index(cache)
        self.ledger = AdmissionLedger(limits, window=RateWindow(limits.rate_window_seconds))
        self._clock = clock
        self.metrics = GateMetrics(registry)
        if registry is not None:
            registry.register(ActiveConcurrency(self.active_records, clock))
        self._namespaces_seen: set[str] = set()
        self._enqueue: Callable[[Request], None] | None = None
        self._wake_scheduled = False
        rates_on = bool(limits.rate_per_namespace or limits.rate_per_repo or limits.rate_cluster)
        self._client = client if rates_on else None  # no rate limit: nothing to keep durably
        self._namespaces = None if namespaces is None else tuple(namespaces)
        self._loaded = self._client is None
        self._load_lock = asyncio.Lock()
        self._flush_handle: asyncio.TimerHandle | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._primed = False
        self._memo = RecordMemo()

    @property
    def window(self) -> RateWindow:
        return self.ledger.window

    # -- the rate window's durable record ------------------------------------------------------------

    async def ensure_loaded(self) -> None:
        """Read the durable record into the rate window, once, before this process's first admission."""
        if self._loaded:
            return
        async with self._load_lock:
            if self._loaded or self._client is None:
                return
            scopes: Sequence[str | None] = self._namespaces if self._namespaces is not None else (None,)
            loaded = 0
            for ns in scopes:
                found = await self._client.list(
                    CONFIGMAPS, ns, label_selector={LABEL_ADMISSION_WINDOW: "true"}
                )
                for cm in found.items:
                    owner_ns = str(cm["metadata"].get("namespace") or "")
                    stamps = parse_stamps(owner_ns, (cm.get("data") or {}).get(WINDOW_DATA_KEY))
                    for uid, stamp in stamps.items():
                        loaded += self.window.record(uid, stamp, durable=True)
            self._loaded = True
            log.info("admission rate window loaded", admissions=loaded)
        self._schedule_flush()  # what was stamped before the load (a standby's priming) is written now

    def _schedule_flush(self, delay: float = WINDOW_FLUSH_SECONDS) -> None:
        # Only a process that loaded the durable record (`ensure_loaded`, called by reconciles: the
        # leader) writes it: a standby's window is built from its cache alone and lacks the stamps of
        # deleted runs, so writing it would erase them.
        if not self._loaded or self._client is None:
            return
        if self._flush_handle is not None or not self.window.has_dirty:
            return
        loop = asyncio.get_running_loop()
        self._flush_handle = loop.call_later(delay, self._start_flush)

    def _start_flush(self) -> None:
        self._flush_handle = None
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.get_running_loop().create_task(self.flush())
        else:  # a write is in flight: look again after it
            self._schedule_flush()

    async def flush(self) -> None:
        """Write the record of every namespace whose window changed (server-side apply, idempotent)."""
        if self._client is None:
            return
        failed = False
        for ns in sorted(self.window.take_dirty()):
            stamps = self.window.namespace_stamps(ns, self._clock())
            body = {
                "metadata": {
                    "name": ADMISSION_WINDOW_CONFIGMAP,
                    "namespace": ns,
                    "labels": {LABEL_ADMISSION_WINDOW: "true"},
                },
                "data": {WINDOW_DATA_KEY: serialize_stamps(stamps)},
            }
            try:
                await self._client.apply(CONFIGMAPS, body, field_manager=WINDOW_FIELD_MANAGER, force=True)
            except Exception as exc:  # kept dirty and retried; admission goes on from memory
                self.window.mark_dirty(ns)
                failed = True
                log.warning("admission rate window not written", namespace=ns, error=str(exc))
        if failed:
            self._schedule_flush(WINDOW_RETRY_SECONDS)
        elif self.window.has_dirty:
            self._schedule_flush()

    def _prime(self) -> None:
        """Once per process, before its first decision: stamp the window from every cached run (finished
        ones included). The only walk over retained runs; informer events keep the window current after it."""
        if self._primed:
            return
        self._primed = True
        for run in self._cache.list(AGENTRUNS, copy=False):
            self.observe_run(run)

    def observe_run(self, obj: JsonObject) -> None:
        """Stamp the rate window with a run's `admittedAt` (any phase: finished runs count until the window
        passes them, and keep counting after they are deleted)."""
        status = obj.get("status") or {}
        at = parse_time((status.get("queue") or {}).get("admittedAt"))
        if at is None or at <= self._clock() - self.window.window:
            return
        meta = obj.get("metadata") or {}
        ns = str(meta.get("namespace") or "default")
        uid = str(meta.get("uid") or "") or f"{ns}/{meta.get('name')}"
        if self.window.record(uid, Stamp(ns, repository_of(obj), at)):
            with contextlib.suppress(RuntimeError):  # no running loop (a unit test): memory only
                self._schedule_flush()

    def snapshot(self) -> list[RunRecord]:
        """Every AgentRun the cache holds, as admission sees it (`jangar.admission.snapshot`)."""
        return snapshot(self._cache, self._clock, self._memo)

    def active_records(self) -> list[RunRecord]:
        """The snapshot with this process's reservations: what admission counts as holding capacity."""
        return self.ledger.with_reservations(self.snapshot(), self._clock())

    def admit(self, run: JsonObject) -> Verdict:
        """Decide for `run` (and reserve its capacity when admitted)."""
        meta = run["metadata"]
        key: RunKey = (str(meta.get("namespace") or "default"), str(meta["name"]))
        self._prime()
        records = self.snapshot()
        if not any(r.key == key for r in records):
            # Held runs are left out of the snapshot; a run asking to be admitted is no longer held.
            records.append(dataclasses.replace(RunRecord.from_run(run), phase=""))
        before = next((r for r in records if r.key == key), None)
        was_admitted = key in self.ledger.reservations or (before is not None and before.active)
        was_queued = before is not None and before.phase == "Queued"
        verdict = self.ledger.admit(key, records, self._clock())
        self._observe(records, key, verdict, was_admitted=was_admitted, was_queued=was_queued)
        if self.window.has_dirty:
            with contextlib.suppress(RuntimeError):  # no running loop (a unit test): memory only
                self._schedule_flush()
        return verdict

    def release(self, namespace: str, name: str, *, unstarted: bool = False) -> None:
        """Give the run's reservation back; `unstarted`: it could not be started, so its admission is
        withdrawn from the rate window as well."""
        self.ledger.release((namespace, name), unstarted=unstarted)
        if unstarted and self.window.has_dirty:
            with contextlib.suppress(RuntimeError):
                self._schedule_flush()

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
        if outcome == "queued" and isinstance(verdict, Waiting) and verdict.scope == "rate":
            self.metrics.rate_limit_rejections.labels(key[0]).inc()
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
        if self._primed:  # before, the first decision's walk stamps every cached run
            self.observe_run(obj)
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
        self._prime()
        records = self.snapshot()
        if not any(r.waiting for r in records):
            return []
        decision = self.ledger.decide(records, self._clock())
        return [Request(ns, name) for ns, name in decision.admitted]
