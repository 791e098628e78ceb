"""The retention sweep: one leader-only pass that deletes expired AgentRuns and runtime debris (issue 13).

Each pass reads the informer caches only (never a live list), asks the pure planners what to do —
`plan_retention` (finished runs past their retention, capped per namespace) and `plan_debris` (finished
runner Pods whose Job is gone) — and applies that with uid preconditions, so an object deleted and created
again under the same name is never the one deleted (the API server answers 409, which is not an error).

The sweep is the only place a run is deleted for its retention: the AgentRun reconciler stops at the Job
TTLs. Like the reconciler before it, the sweep deletes a run only once its record is committed
(`record_run` answers `RECORDED`); a run whose record is still pending stays for the next pass, which then
comes after `RECORD_RETRY_SECONDS`. Passes are at most `JANGAR_RETENTION_SWEEP_INTERVAL_SECONDS` apart and
sooner when a run falls due: a pass sleeps until the earliest known run is due (`RetentionPlan.next_due`),
and the AgentRun informer wakes it (`notice`) when a run that just finished falls due before that, so a
short `ttlSecondsAfterFinished` is kept to about a second, as with the per-run requeue it replaces. While
the cap holds runs back, the next pass waits the full interval and nothing wakes it earlier.

Counted: `jangar_agentrun_retention_deletes_total` / `_errors_total` and
`jangar_runtime_debris_found_total` / `_deleted_total` / `_errors_total`, all by namespace (the 0.9.29
`agents_*` names come from the metrics twin). A debris Pod is counted and gets a Warning Event
(`RuntimeDebrisFound`) once, when first found; a deleted one gets a Normal `RuntimeDebrisDeleted`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter

from jangar.controllers.kinds import AGENTRUNS, AGENTS, JOBS, PODS
from jangar.controllers.recording import (
    RECORD_RETRY_SECONDS,
    Offer,
    RunRecorderProtocol,
    provider_of,
    record_run,
)
from jangar.runtime import (
    ApiError,
    CacheReader,
    Client,
    ConflictError,
    FuncHandler,
    JsonObject,
    Manager,
    Recorder,
    ResourceRef,
)
from jangar.runtime.store import CONTROLLER_UID_INDEX
from jangar.scheduler.debris import plan_debris
from jangar.scheduler.retention import ObjectKey, plan_retention
from jangar.scheduler.ttl import retention_remaining
from jangar.settings import Settings

log = structlog.get_logger("jangar.controllers.sweep")

__all__ = ["MIN_PASS_SECONDS", "SweepMetrics", "Sweeper", "install_sweep"]

MIN_PASS_SECONDS = 1.0
"""The shortest wait between two passes (a run falling due in 0.2 s is deleted about a second later)."""


class SweepMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.retention_deletes = Counter(
            "jangar_agentrun_retention_deletes_total",
            "Finished AgentRuns deleted by the retention sweep at the end of their retention.",
            ["namespace"],
            registry=registry,
        )
        self.retention_errors = Counter(
            "jangar_agentrun_retention_errors_total",
            "Retention deletes of AgentRuns the API server refused.",
            ["namespace"],
            registry=registry,
        )
        self.debris_found = Counter(
            "jangar_runtime_debris_found_total",
            "Finished runner Pods found without their Job (each Pod counted once).",
            ["namespace"],
            registry=registry,
        )
        self.debris_deleted = Counter(
            "jangar_runtime_debris_deleted_total",
            "Orphaned runner Pods deleted (JANGAR_RUNTIME_DEBRIS_CLEANUP_MODE=delete).",
            ["namespace"],
            registry=registry,
        )
        self.debris_errors = Counter(
            "jangar_runtime_debris_errors_total",
            "Deletes of orphaned runner Pods the API server refused.",
            ["namespace"],
            registry=registry,
        )


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Sweeper:
    """One per manager, run by `run()` on the leader. `sweep_once()` is one pass (tests call it directly)."""

    def __init__(
        self,
        *,
        settings: Settings,
        client: Client,
        cache: CacheReader,
        recorder: RunRecorderProtocol | None,
        events: Recorder,
        metrics: SweepMetrics,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.settings = settings
        self.client = client
        self.cache = cache
        self.recorder = recorder
        self.events = events
        self.metrics = metrics
        self.clock = clock
        self._wake = asyncio.Event()
        self._sleep_left: Callable[[], float] | None = None
        """While a pass is awaited: the seconds left until it; None while a pass runs or the cap holds runs."""
        self._held = False
        self._reported: set[str] = set()
        """uids of the debris Pods already counted and announced (pruned to those still found)."""

    async def run(self) -> None:
        while True:
            try:
                delay = await self.sweep_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a pass is retried whole; the manager must not stop for it
                log.warning("sweep pass failed", error=repr(exc))
                delay = self.settings.retention.sweep_interval_seconds
            await self._pause(delay)

    async def _pause(self, delay: float) -> None:
        """Wait `delay` seconds, or less if `notice` sees a run fall due sooner."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        self._wake.clear()
        if not self._held:
            self._sleep_left = lambda: deadline - loop.time()
        try:
            async with asyncio.timeout(delay):
                await self._wake.wait()
        except TimeoutError:
            pass
        finally:
            self._sleep_left = None

    def notice(self, run: JsonObject) -> None:
        """An AgentRun was added or changed (informer handler): wake the sweep if it falls due before the
        next pass (a run that just finished with a short retention)."""
        left = self._sleep_left
        if left is None:
            return
        remaining = retention_remaining(run, self.settings, self.clock())
        if remaining is not None and remaining < left():
            self._wake.set()

    async def sweep_once(self) -> float:
        """One pass; returns the seconds until the next one."""
        now = self.clock()
        interval = self.settings.retention.sweep_interval_seconds
        plan = plan_retention(self.cache.list(AGENTRUNS, copy=False), now, self.settings)
        awaiting_record = False
        for key in plan.deletes:
            awaiting_record |= not await self._delete_run(key)
        self._held = bool(plan.held)
        if plan.held:
            log.info("retention cap reached, more runs next pass", held=dict(plan.held))
        await self._debris(now)
        delay = interval
        if not plan.held:  # while the cap holds runs back, the next pass waits the whole interval
            if plan.next_due is not None:
                delay = min(delay, plan.next_due)
            if awaiting_record:
                delay = min(delay, RECORD_RETRY_SECONDS)
        return max(MIN_PASS_SECONDS, delay)

    # -- retention -----------------------------------------------------------------------------------

    def _provider(self, run: Mapping[str, Any]) -> str | None:
        meta = run.get("metadata") or {}
        ns = str(meta.get("namespace") or "")
        jobs = {
            str(job["metadata"]["name"]): job
            for job in self.cache.list(
                JOBS, ns, index=(CONTROLLER_UID_INDEX, str(meta.get("uid"))), copy=False
            )
        }
        ref = (run.get("spec") or {}).get("agentRef")
        agent_name = ref.get("name") if isinstance(ref, Mapping) else ref
        agent = self.cache.get(AGENTS, str(agent_name), ns, copy=False) if agent_name else None
        return provider_of(run, jobs, agent)

    async def _delete_run(self, key: ObjectKey) -> bool:
        """Delete one expired run; False when its record is not committed yet (kept for a later pass)."""
        run = self.cache.get(AGENTRUNS, key.name, key.namespace, copy=False)
        if run is None or (run.get("metadata") or {}).get("uid") != key.uid:
            return True  # gone since the plan was made
        offer = record_run(self.recorder, run, provider=self._provider(run))
        if offer is not Offer.RECORDED:
            log.debug(
                "retention elapsed, waiting for the run's record", namespace=key.namespace, name=key.name
            )
            return False
        if await self._delete(AGENTRUNS, key, self.metrics.retention_errors):
            self.metrics.retention_deletes.labels(key.namespace).inc()
            log.info(
                "retention elapsed, deleted run", kind="AgentRun", namespace=key.namespace, name=key.name
            )
        return True

    # -- runtime debris ------------------------------------------------------------------------------

    async def _debris(self, now: datetime) -> None:
        plan = plan_debris(
            self.cache.list(PODS, copy=False), self.cache.list(JOBS, copy=False), now, self.settings
        )
        found = {key.uid for key in plan.found}
        self._reported &= found
        deleting = set(plan.deletes)
        for key in plan.found:
            if key.uid in self._reported:
                continue
            self._reported.add(key.uid)
            self.metrics.debris_found.labels(key.namespace).inc()
            log.info("runtime debris found", kind="Pod", namespace=key.namespace, name=key.name)
            if key not in deleting:
                self._announce(
                    key,
                    "Warning",
                    "RuntimeDebrisFound",
                    "finished runner Pod whose Job is gone; not deleted while "
                    f"JANGAR_RUNTIME_DEBRIS_CLEANUP_MODE={self.settings.runtime_debris.mode} (set it to delete)",
                )
        for key in plan.deletes:
            if await self._delete(PODS, key, self.metrics.debris_errors):
                self.metrics.debris_deleted.labels(key.namespace).inc()
                self._announce(
                    key, "Normal", "RuntimeDebrisDeleted", "finished runner Pod whose Job is gone, deleted"
                )
                log.info("runtime debris deleted", kind="Pod", namespace=key.namespace, name=key.name)

    def _announce(self, key: ObjectKey, event_type: str, reason: str, message: str) -> None:
        pod = self.cache.get(PODS, key.name, key.namespace, copy=False)
        if pod is not None:
            self.events.event({**pod, "apiVersion": "v1", "kind": "Pod"}, event_type, reason, message)

    # -- the delete ----------------------------------------------------------------------------------

    async def _delete(self, ref: ResourceRef, key: ObjectKey, errors: Counter) -> bool:
        """DELETE with a uid precondition. True when this call deleted it; a 404 or a 409 (another object
        now holds the name) is False without an error; any other refusal is counted in `errors`."""
        try:
            answer = await self.client.delete(
                ref, key.name, key.namespace, uid=key.uid, ignore_not_found=True
            )
        except ConflictError:
            return False
        except ApiError as exc:
            errors.labels(key.namespace).inc()
            log.warning(
                "sweep delete failed", kind=ref.kind, namespace=key.namespace, name=key.name, error=str(exc)
            )
            return False
        return answer is not None


def install_sweep(
    manager: Manager,
    settings: Settings,
    recorder: RunRecorderProtocol | None,
    events: Recorder,
    clock: Callable[[], datetime] | None = None,
) -> Sweeper:
    """Register the sweep as a leader-only runnable (the caches it reads are informers `install` starts)."""
    sweeper = Sweeper(
        settings=settings,
        client=manager.client,
        cache=manager.cache,
        recorder=recorder,
        events=events,
        metrics=SweepMetrics(manager.metrics.registry),
        clock=clock or _utcnow,
    )
    manager.cache.add_event_handler(
        AGENTRUNS,
        FuncHandler(add=lambda run, _: sweeper.notice(run), update=lambda _, run: sweeper.notice(run)),
    )
    manager.add_func(sweeper.run, name="retention-sweep", need_leader_election=True)
    return sweeper
