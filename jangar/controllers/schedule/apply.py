"""Carry out a `SchedulePlan`: child writes (create, or replace the cached object with the desired spec,
labels, annotations and owner references — the cached resourceVersion makes a stale replace a 409 and a
retry), child deletions (background propagation: a CronJob's Jobs go with it), one status write through the
status subresource, then the Events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from jangar.api.refs import SCHEDULES
from jangar.controllers.schedule.plan import ChildWrite, SchedulePlan
from jangar.controllers.status import write_status
from jangar.runtime import AlreadyExistsError, Client, JsonObject, PropagationPolicy, Recorder, Result

log = structlog.get_logger("jangar.controllers.schedule")

__all__ = ["ScheduleApplier"]


def _replacement(write: ChildWrite) -> dict[str, Any]:
    assert write.existing is not None
    existing = dict(write.existing)
    meta = dict(existing.get("metadata") or {})
    want = write.desired["metadata"]
    meta["labels"] = {**(meta.get("labels") or {}), **(want.get("labels") or {})}
    if want.get("annotations"):
        meta["annotations"] = {**(meta.get("annotations") or {}), **want["annotations"]}
    if want.get("ownerReferences"):
        meta["ownerReferences"] = want["ownerReferences"]
    body: dict[str, Any] = {k: v for k, v in existing.items() if k not in ("status", "spec", "data")}
    body["metadata"] = meta
    for key in ("spec", "data"):
        if key in write.desired:
            body[key] = write.desired[key]
    return body


@dataclass
class ScheduleApplier:
    client: Client
    events: Recorder

    async def _write(self, write: ChildWrite) -> None:
        meta = write.desired["metadata"]
        if write.existing is None:
            try:
                await self.client.create(write.ref, write.desired)
                log.info("created", kind=write.ref.kind, namespace=meta["namespace"], name=meta["name"])
                return
            except AlreadyExistsError:
                # the cache lags: the next pass sees it and compares
                log.info(
                    "exists already", kind=write.ref.kind, namespace=meta["namespace"], name=meta["name"]
                )
                return
        await self.client.update(write.ref, _replacement(write))
        log.info("updated", kind=write.ref.kind, namespace=meta["namespace"], name=meta["name"])

    async def apply(self, schedule: JsonObject, plan: SchedulePlan, now: datetime) -> Result | None:
        ns = str(schedule["metadata"]["namespace"])
        for write in plan.writes:
            await self._write(write)
        for ref, name in plan.deletes:
            await self.client.delete(
                ref, name, ns, propagation_policy=PropagationPolicy.BACKGROUND, ignore_not_found=True
            )
            log.info("deleted", kind=ref.kind, namespace=ns, name=name)
        if plan.status is not None:
            written = await write_status(self.client, SCHEDULES, schedule, plan.status, now=now)
            if written is not None:
                for event in plan.events:
                    self.events.event(written, event.type, event.reason, event.message)
        return Result(requeue_after=plan.requeue_after) if plan.requeue_after is not None else None
