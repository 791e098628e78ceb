"""Carry out a `ToolRunPlan`, in the order that is safe after a crash at any point: children first (adopted
when they already exist under their deterministic names; `ForeignObject` when another object controls
them), then one status write through the status subresource, then what must follow the recorded outcome:
the transition's Event, Job deletions (background propagation) and Job TTL patches."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime

import structlog

from jangar.api.refs import TOOLRUNS
from jangar.controllers.jobs import create_plan
from jangar.controllers.kinds import JOBS
from jangar.controllers.recording import RunRecorderProtocol, record_tracked_run, retry_refused
from jangar.controllers.status import write_status
from jangar.controllers.toolrun.plan import ToolRunPlan
from jangar.runtime import CacheReader, Client, JsonObject, NotFoundError, PropagationPolicy, Recorder, Result

log = structlog.get_logger("jangar.controllers.toolrun")

__all__ = ["ToolRunApplier"]


@dataclass
class ToolRunApplier:
    client: Client
    cache: CacheReader
    events: Recorder
    recorder: RunRecorderProtocol | None = None
    """Postgres run records (the recorder skips a snapshot equal to the last one)."""

    async def apply(self, toolrun: JsonObject, plan: ToolRunPlan, now: datetime) -> Result | None:
        meta = toolrun["metadata"]
        ns, name = str(meta["namespace"]), str(meta["name"])
        for note in plan.notes:
            log.warning(note, kind="ToolRun", namespace=ns, name=name)
        if plan.create is not None:
            await create_plan(self.client, self.cache, plan.create, meta.get("uid"))
        updated = toolrun
        if plan.status is not None:
            written = await write_status(self.client, TOOLRUNS, toolrun, plan.status, now=now)
            if written is not None:
                updated = written
                old_phase = (toolrun.get("status") or {}).get("phase")
                if old_phase != plan.phase:
                    log.info("toolrun phase", namespace=ns, name=name, phase=plan.phase, previous=old_phase)
                if plan.event is not None:
                    self.events.event(written, plan.event.type, plan.event.reason, plan.event.message)
        for job in plan.delete_jobs:
            await self.client.delete(
                JOBS, job, ns, propagation_policy=PropagationPolicy.BACKGROUND, ignore_not_found=True
            )
        for job, ttl in plan.job_ttls:
            with contextlib.suppress(NotFoundError):  # gone already: nothing to expire
                await self.client.patch(JOBS, job, {"spec": {"ttlSecondsAfterFinished": ttl}}, namespace=ns)
        offer = record_tracked_run(self.recorder, "ToolRun", updated)
        requeue_after = retry_refused(offer, plan.requeue_after)  # a refused record is offered again
        return Result(requeue_after=requeue_after) if requeue_after is not None else None
