"""Create or adopt the Jobs and ConfigMaps a run owns.

Names are deterministic (`jangar.scheduler.naming`), so a create that finds the object already there is not
an error: the reconciler adopts it if it is controlled by the same AgentRun (same uid) and never creates a
second one (reference §12.3). An object with that name controlled by another incarnation of the run (deleted
and re-created with the same name, its children not yet garbage-collected) is not adopted: the caller waits.
"""

from __future__ import annotations

from typing import Any

import structlog

from jangar.controllers.kinds import CONFIGMAPS, JOBS
from jangar.runtime import AlreadyExistsError, CacheReader, Client, JsonObject, controller_uid
from jangar.scheduler import JobPlan

log = structlog.get_logger("jangar.controllers.jobs")

__all__ = ["ForeignObject", "create_plan"]


class ForeignObject(Exception):
    """A child name is taken by an object another AgentRun (or another incarnation) controls."""


async def _create_or_adopt(client: Client, ref: Any, obj: JsonObject, owner_uid: str | None) -> JsonObject:
    meta = obj["metadata"]
    try:
        created: JsonObject = await client.create(ref, obj)
        return created
    except AlreadyExistsError:
        existing = await client.get(ref, meta["name"], meta["namespace"])
        if owner_uid and controller_uid(existing) != owner_uid:
            raise ForeignObject(
                f"{ref.kind} {meta['namespace']}/{meta['name']} exists but is controlled by another object "
                f"(uid {controller_uid(existing)}); waiting for it to be garbage-collected"
            ) from None
        log.info("adopted existing child", kind=ref.kind, namespace=meta["namespace"], name=meta["name"])
        return existing


async def create_plan(client: Client, cache: CacheReader, plan: JobPlan, owner_uid: str | None) -> JsonObject:
    """Create the plan's ConfigMaps, then its Job (adopting any that exist); returns the Job."""
    meta = plan.job["metadata"]
    cached = cache.get(JOBS, meta["name"], meta["namespace"])
    if cached is not None:
        if owner_uid and controller_uid(cached) != owner_uid:
            raise ForeignObject(
                f"Job {meta['namespace']}/{meta['name']} is controlled by another object; waiting for it to go"
            )
        return cached
    for configmap in plan.configmaps:
        await _create_or_adopt(client, CONFIGMAPS, configmap, owner_uid)
    return await _create_or_adopt(client, JOBS, plan.job, owner_uid)
