"""The AgentRun reconciler: a thin shell of read → decide → apply.

Each request reads the newest cached run and its `RunSnapshot`, calls the pure `decide` (once more with the
admission verdict when the plan asks for one: `AdmissionGate.admit` reserves the run's capacity under a lock,
so several workers never admit past a limit), and hands the plan to `PlanApplier`. A child name taken by
another run turns into `on_foreign_child`'s plan. A stale cache shows up as a 409 on a write, which the
runtime retries from fresh state.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import structlog

from jangar.api.contract import Phase
from jangar.audit import AuditSink
from jangar.controllers.admission_gate import AdmissionGate
from jangar.controllers.agentrun.apply import ChildNameTaken, PlanApplier
from jangar.controllers.agentrun.decide import decide, on_foreign_child
from jangar.controllers.agentrun.idempotency_gate import check_key, key_plan, retry_seconds, with_retry
from jangar.controllers.agentrun.snapshot import RunSnapshot, read_snapshot
from jangar.controllers.audit import admission_event, emit, key_event
from jangar.controllers.idempotency import IdempotencyClaims
from jangar.controllers.kinds import AGENTRUNS
from jangar.controllers.metrics import RunMetrics
from jangar.controllers.own_writes import STALE_RETRY_SECONDS
from jangar.controllers.recording import provider_of
from jangar.runtime import CacheReader, Client, JsonObject, NotFoundError, Request, Result
from jangar.settings import Settings

log = structlog.get_logger("jangar.controllers.agentrun")

__all__ = ["AgentRunReconciler"]


def _now() -> datetime:
    return datetime.now(UTC)


class AgentRunReconciler:
    """One per manager. Safe with several workers: a run is never reconciled twice at once."""

    def __init__(
        self,
        *,
        settings: Settings,
        client: Client,
        cache: CacheReader,
        gate: AdmissionGate,
        applier: PlanApplier,
        metrics: RunMetrics,
        clock: Callable[[], datetime] = _now,
        idempotency: IdempotencyClaims | None = None,
        audit: AuditSink | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.cache = cache
        self.gate = gate
        self.applier = applier
        self.metrics = metrics
        self.clock = clock
        self.idempotency = idempotency
        self.audit = audit

    async def reconcile(self, req: Request) -> Result | None:
        started = time.monotonic()
        try:
            return await self._reconcile(req)
        except NotFoundError:
            if self.cache.get(AGENTRUNS, req.name, req.namespace, copy=False) is None:
                return None  # deleted while we worked (e.g. the finalizer just released it)
            raise  # something the run needs is missing (a Secret is not watched): retry with backoff
        finally:
            elapsed_ms = (time.monotonic() - started) * 1000
            self.metrics.reconcile_ms.labels("agentrun", req.namespace or "").observe(elapsed_ms)

    async def _reconcile(self, req: Request) -> Result | None:
        run = self.cache.get(AGENTRUNS, req.name, req.namespace)
        if run is None:
            self.applier.own_writes.forget(AGENTRUNS.kind, req.namespace, req.name)
            return None
        if self.applier.own_writes.is_stale(AGENTRUNS.kind, run):
            return Result(requeue_after=STALE_RETRY_SECONDS)  # the cache has not seen our last write yet
        now = self.clock()
        snap = await read_snapshot(self.cache, self.client, run, self.settings, now)
        key = await check_key(self.idempotency, snap)  # issue 13: durable idempotency keys
        stopped = key_plan(snap, key, retry_seconds())
        if stopped is not None:
            if stopped.status is not None and stopped.status.phase == Phase.FAILED:
                emit(self.audit, key_event(run, stopped.status.details.reason))
            return await self.applier.apply(run, stopped, now, provider=run_provider(snap))
        return with_retry(await self._decide_and_apply(req, run, snap, now), key)

    async def _decide_and_apply(
        self, req: Request, run: JsonObject, snap: RunSnapshot, now: datetime
    ) -> Result | None:
        plan = decide(snap)
        if plan.needs_admission:
            await self.gate.ensure_loaded()  # the rate window's durable record, before the first admission
            verdict = self.gate.admit(run)
            emit(self.audit, admission_event(run, verdict))  # issue 13: policy decisions are audited
            plan = decide(snap, verdict)
        provider = run_provider(snap)
        try:
            return await self.applier.apply(run, plan, now, provider=provider)
        except ChildNameTaken as exc:
            log.warning(
                "child name taken", kind="AgentRun", namespace=req.namespace, name=req.name, error=str(exc)
            )
            return await self.applier.apply(exc.run, on_foreign_child(snap, str(exc)), now, provider=provider)


def run_provider(snap: RunSnapshot) -> str | None:
    """The AgentProvider's name for the run record (`provider_of` over the snapshot)."""
    ref = (snap.run.get("spec") or {}).get("agentRef")
    agent_name = ref.get("name") if isinstance(ref, Mapping) else ref
    agent = snap.lookup.get("Agent", str(agent_name)) if agent_name else None
    return provider_of(snap.run, snap.jobs, agent)
