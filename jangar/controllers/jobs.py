"""Create, adopt, delete and expire the Jobs and ConfigMaps a run owns.

Names are deterministic (`jangar.scheduler.naming`), so a create that finds the object already there is not
an error: the reconciler adopts it if it is controlled by the same AgentRun (same uid) and never creates a
second one (reference §12.3). An object with that name controlled by another incarnation of the run (deleted
and re-created with the same name, its children not yet garbage-collected) is not adopted: the caller waits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

from jangar.controllers.kinds import CONFIGMAPS, JOBS
from jangar.runtime import AlreadyExistsError, CacheReader, Client, JsonObject, PropagationPolicy
from jangar.scheduler import JobPlan

log = structlog.get_logger("jangar.controllers.jobs")

__all__ = [
    "ForeignObject",
    "controller_uid",
    "create_plan",
    "delete_jobs",
    "job_finished",
    "patch_job_ttl",
    "run_jobs",
]


class ForeignObject(Exception):
    """A child name is taken by an object another AgentRun (or another incarnation) controls."""


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


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


def run_jobs(cache: CacheReader, namespace: str, run_uid: str) -> list[JsonObject]:
    """Every Job the run controls (one for `job`, one per step attempt for `workflow`)."""
    return cache.list(JOBS, namespace, index=("controller-uid", run_uid))


async def delete_jobs(client: Client, cache: CacheReader, namespace: str, run_uid: str) -> int:
    """Delete the run's Jobs and their Pods (background propagation); returns how many were deleted."""
    count = 0
    for job in run_jobs(cache, namespace, run_uid):
        name = job["metadata"]["name"]
        await client.delete(
            JOBS, name, namespace, propagation_policy=PropagationPolicy.BACKGROUND, ignore_not_found=True
        )
        count += 1
    return count


async def patch_job_ttl(client: Client, job: Mapping[str, Any] | None, ttl: int | None) -> bool:
    """Set `spec.ttlSecondsAfterFinished` when it differs (None: leave the Job for ever). True if patched."""
    if job is None or ttl is None:
        return False
    if (job.get("spec") or {}).get("ttlSecondsAfterFinished") == ttl:
        return False
    meta = job["metadata"]
    try:
        await client.patch(
            JOBS, meta["name"], {"spec": {"ttlSecondsAfterFinished": ttl}}, namespace=meta["namespace"]
        )
    except Exception as exc:
        if getattr(exc, "status", None) == 404:
            return False
        raise
    return True


def job_finished(job: Mapping[str, Any]) -> bool:
    """True once the Job has a Complete or Failed condition."""
    for condition in (job.get("status") or {}).get("conditions") or ():
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return True
    return False
