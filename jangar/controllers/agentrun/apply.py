"""Carry out a `RunPlan` against the API server, in the one order that is safe after a crash at any point.

1. the finalizer (so nothing is created for a run that could vanish without cleanup);
2. children: the GitHub App token Secret, the ConfigMaps, the Job — created, or adopted when a child with the
   deterministic name is already ours (`ForeignObject` when another run controls it);
3. one status write (skipped when nothing but timestamps changed);
4. follow-ups that must come after the outcome is recorded: deleting Jobs (a Job must not vanish before its
   outcome is read), Job TTL patches, the finalizer's removal; then the Event for a phase change, the metric
   and the run record (the recorder skips repeats).

The record is offered on every pass (level-triggered, `jangar.controllers.recording`): a refused offer
requeues the run, and a run's finalizer goes only once its record is committed (the retention sweep,
`jangar.controllers.sweep`, waits for it the same way before deleting a run).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from jangar.api.contract import CONDITION_ARTIFACTS_TRUNCATED, FINALIZER_RUNTIME_CLEANUP, is_terminal
from jangar.conditions import find_condition, parse_time
from jangar.controllers.admission_gate import AdmissionGate
from jangar.controllers.agentrun.plan import RunPlan
from jangar.controllers.app_tokens import AppTokens
from jangar.controllers.artifact import create_run_artifacts
from jangar.controllers.jobs import ForeignObject, create_plan
from jangar.controllers.kinds import AGENTRUNS, JOBS
from jangar.controllers.metrics import RunMetrics
from jangar.controllers.own_writes import OwnWrites
from jangar.controllers.recording import (
    RECORD_HOLD_DELETE_SECONDS,
    RECORD_RETRY_SECONDS,
    Offer,
    RunRecorderProtocol,
    record_run,
    retry_refused,
)
from jangar.controllers.runner_sa import ensure_service_account
from jangar.controllers.status import write_status
from jangar.runtime import (
    CacheReader,
    Client,
    JsonObject,
    NotFoundError,
    PropagationPolicy,
    Recorder,
    Result,
)
from jangar.runtime.controllerutil import ensure_finalizer, remove_finalizer_and_patch
from jangar.scheduler.runtimes import runtime_type
from jangar.settings import Settings

log = structlog.get_logger("jangar.controllers.agentrun")

__all__ = ["ChildNameTaken", "PlanApplier"]


class ChildNameTaken(Exception):
    """A child's deterministic name is held by an object another run controls; `run` is the run as written
    so far in this pass (its finalizer may be new), for the follow-up status write."""

    def __init__(self, message: str, run: JsonObject) -> None:
        super().__init__(message)
        self.run = run


def _truncated(run: Mapping[str, Any]) -> bool:
    cond = find_condition((run.get("status") or {}).get("conditions"), CONDITION_ARTIFACTS_TRUNCATED)
    return cond is not None and cond.get("status") == "True"


@dataclass
class PlanApplier:
    """The side of the AgentRun reconciler that writes. One per manager; stateless between calls."""

    client: Client
    cache: CacheReader
    gate: AdmissionGate
    events: Recorder
    recorder: RunRecorderProtocol | None
    app_tokens: AppTokens
    metrics: RunMetrics
    #: for the runner ServiceAccount jangar creates (issue 12); None: the plan never asks for one
    settings: Settings | None = None
    own_writes: OwnWrites = field(default_factory=OwnWrites)
    """Versions our writes replaced (runs and Jobs): the reconciler defers a pass that reads one."""

    async def apply(
        self, run: JsonObject, plan: RunPlan, now: datetime, *, provider: str | None = None
    ) -> Result | None:
        """Carry out `plan`; `provider` (the AgentProvider's name) goes into the run record."""
        meta = run["metadata"]
        ns, name = str(meta["namespace"]), str(meta["name"])
        for note in plan.notes:
            log.warning(note, kind="AgentRun", namespace=ns, name=name)
        if plan.release_admission:
            self.gate.release(ns, name)
        started = False  # the Job (or first step) exists: from then on the run really holds its slot
        try:
            if plan.add_finalizer:  # a run admitted on its first pass gets its finalizer here
                before = run
                run = await ensure_finalizer(self.client, AGENTRUNS, run, FINALIZER_RUNTIME_CLEANUP)
                if run is not before:
                    self.own_writes.wrote(AGENTRUNS.kind, before)
            if plan.app_token is not None:
                await self.app_tokens.ensure(run, plan.app_token)
            if plan.ensure_service_account is not None:
                await ensure_service_account(self.client, plan.ensure_service_account, ns, self.settings)
            if plan.create is not None:
                await create_plan(self.client, self.cache, plan.create, meta.get("uid"))
                started = True
            if plan.artifacts:
                await create_run_artifacts(
                    self.client, plan.artifacts, meta.get("uid"), on_created=self.metrics.storage.recorded
                )
        except BaseException as exc:
            if plan.admitted and not started:  # the run could not start: its place goes back to admission
                self.gate.release(ns, name, unstarted=True)
            if isinstance(exc, ForeignObject):
                raise ChildNameTaken(str(exc), run) from exc
            raise
        updated = run
        if plan.status is not None:
            try:
                written = await write_status(self.client, AGENTRUNS, run, plan.status.status, now=now)
            except BaseException:
                if plan.admitted and not started:  # a workflow's admission is this write: it did not happen
                    self.gate.release(ns, name, unstarted=True)
                raise
            if written is not None:
                self.own_writes.wrote(AGENTRUNS.kind, run, written)
                updated = written
                self._transition(run, written, plan)
                for type_, reason, message in plan.events:
                    self.events.event(written, type_, reason, message)
                if _truncated(written) and not _truncated(run):
                    self.metrics.storage.artifacts_truncated.labels(ns).inc()
        for job in plan.delete_jobs:
            await self.client.delete(
                JOBS, job, ns, propagation_policy=PropagationPolicy.BACKGROUND, ignore_not_found=True
            )
        for job, ttl in plan.job_ttls:
            cached = self.cache.get(JOBS, job, ns, copy=False)
            if cached is not None and self.own_writes.is_stale(JOBS.kind, cached):
                continue  # our patch of this version is done; the cache has not seen it yet
            patched = await self._patch_ttl(ns, job, ttl)
            if cached is not None and patched is not None:
                self.own_writes.wrote(JOBS.kind, cached, patched)
        if plan.remove_finalizer:
            if not self._recorded_before_delete(record_run(self.recorder, run, provider=provider), run, now):
                return Result(requeue_after=RECORD_RETRY_SECONDS)
            if plan.delete_jobs:
                log.info("deleted the jobs of a deleted run", kind="AgentRun", namespace=ns, name=name)
            await remove_finalizer_and_patch(self.client, AGENTRUNS, run, FINALIZER_RUNTIME_CLEANUP)
            return None
        offer = record_run(self.recorder, updated, provider=provider)
        requeue_after = retry_refused(offer, plan.requeue_after)
        return Result(requeue_after=requeue_after) if requeue_after is not None else None

    def _recorded_before_delete(self, offer: Offer, run: Mapping[str, Any], now: datetime) -> bool:
        """Whether a deleted run may go: its record is committed, or it waited `RECORD_HOLD_DELETE_SECONDS`."""
        if offer is Offer.RECORDED:
            return True
        deleted = parse_time((run.get("metadata") or {}).get("deletionTimestamp"))
        if deleted is not None and (now - deleted).total_seconds() >= RECORD_HOLD_DELETE_SECONDS:
            meta = run.get("metadata") or {}
            log.warning(
                "deleted run released before its record was written",
                kind="AgentRun",
                namespace=meta.get("namespace"),
                name=meta.get("name"),
                offer=offer,
                waited_seconds=RECORD_HOLD_DELETE_SECONDS,
            )
            return True
        return False

    # -- steps -------------------------------------------------------------------------------------

    async def _patch_ttl(self, namespace: str, job: str, ttl: int) -> JsonObject | None:
        """The patched Job, or None when it is gone already (its own TTL, a user): nothing to expire."""
        with contextlib.suppress(NotFoundError):
            return await self.client.patch(
                JOBS, job, {"spec": {"ttlSecondsAfterFinished": ttl}}, namespace=namespace
            )
        return None

    def _transition(self, old: Mapping[str, Any], new: JsonObject, plan: RunPlan) -> None:
        """Log, count and announce a status change (an Event only when the phase changed)."""
        assert plan.status is not None
        old_phase = str((old.get("status") or {}).get("phase") or "")
        phase, details = plan.status.phase, plan.status.details
        if old_phase != phase and is_terminal(phase):
            runtime = ((new.get("status") or {}).get("runtimeRef") or {}).get("type") or runtime_type(new)
            namespace = str((new.get("metadata") or {}).get("namespace") or "")
            self.metrics.outcomes.labels(phase, runtime or "unknown", namespace).inc()
        if old_phase == phase and not details.invalid:
            return
        meta = new["metadata"]
        log.info(
            "agentrun phase",
            kind="AgentRun",
            namespace=meta.get("namespace"),
            name=meta.get("name"),
            phase=phase,
            previous=old_phase or None,
            reason=details.reason,
        )
        if old_phase == phase:
            return
        warning = phase == "Failed" or (details.invalid and phase == "Pending")
        self.events.event(
            new,
            "Warning" if warning else "Normal",
            details.reason if warning else phase,
            details.message or phase,
        )
