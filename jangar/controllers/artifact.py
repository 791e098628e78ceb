"""The Artifact controller: validate an Artifact, state where its content lives, delete it when its
`lifecycle.ttlDays` are over (the reference ignored the lifecycle, §12.17).

`decide_artifact(artifact, now)` is pure; `ArtifactReconciler` applies it (one status write, or the
delete) and returns `requeue_after` for the expiry. `create_run_artifacts` creates the Artifacts of a
finished AgentRun (`jangar.scheduler.artifacts`), adopting any already there.

`status.uri`: `spec.uri` when set (run artifacts: `pvc://<claim>/<path>`, an URL or a pod path), else
`storage://<storageRef>[/<key>]`, else `artifact://<namespace>/<name>` (the reference's forms). jangar
records locations; it never uploads or copies content, and the status says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from jangar.api.shape import as_map
from jangar.conditions import format_time, parse_time
from jangar.controllers.kinds import ARTIFACTS
from jangar.controllers.status import Cond, compose_status, write_status
from jangar.controllers.storage_metrics import StorageMetrics
from jangar.runtime import (
    AlreadyExistsError,
    CacheReader,
    Client,
    JsonObject,
    Recorder,
    Request,
    Result,
    controller_uid,
)

log = structlog.get_logger("jangar.controllers.artifact")

__all__ = [
    "ArtifactPlan",
    "ArtifactReconciler",
    "artifact_expires_at",
    "create_run_artifacts",
    "decide_artifact",
]

_CHECKSUM = re.compile(r"^sha256:[0-9a-f]{64}$")
_MAX_REQUEUE_SECONDS = 3600.0


@dataclass(frozen=True)
class ArtifactPlan:
    phase: str | None = None
    reason: str = ""
    message: str = ""
    status: dict[str, Any] | None = None
    delete: bool = False
    requeue_after: float | None = None


def artifact_expires_at(artifact: Mapping[str, Any]) -> datetime | None:
    days = as_map(as_map(artifact.get("spec")).get("lifecycle")).get("ttlDays")
    created = parse_time((artifact.get("metadata") or {}).get("creationTimestamp"))
    if not isinstance(days, int) or isinstance(days, bool) or days <= 0 or created is None:
        return None
    try:
        return created + timedelta(days=days)
    except OverflowError:  # past year 9999: never expires
        return None


def _uri(artifact: Mapping[str, Any]) -> str:
    spec = as_map(artifact.get("spec"))
    meta = artifact.get("metadata") or {}
    if isinstance(spec.get("uri"), str) and spec["uri"]:
        return str(spec["uri"])
    storage = as_map(spec.get("storageRef")).get("name")
    if storage:
        key = spec.get("key")
        return f"storage://{storage}/{key}" if key else f"storage://{storage}"
    return f"artifact://{meta.get('namespace')}/{meta.get('name')}"


def _problem(artifact: Mapping[str, Any]) -> tuple[str, str] | None:
    spec = artifact.get("spec") or {}
    checksum = spec.get("checksum")
    if checksum is not None and not (isinstance(checksum, str) and _CHECKSUM.match(checksum)):
        return "InvalidChecksum", f"spec.checksum {checksum!r} must be sha256:<64 lower-case hex digits>"
    storage = spec.get("storageRef")
    if isinstance(storage, Mapping) and not storage.get("name"):
        return "MissingStorageName", "spec.storageRef.name is required when spec.storageRef is set"
    return None


def decide_artifact(artifact: Mapping[str, Any], now: datetime) -> ArtifactPlan:
    meta = artifact.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return ArtifactPlan()
    end = artifact_expires_at(artifact)
    if end is not None and now >= end:
        message = f"lifecycle.ttlDays elapsed at {format_time(end)}: deleting the Artifact"
        return ArtifactPlan(phase="Expired", reason="Expired", message=message, delete=True)
    requeue = None if end is None else min(max(1.0, (end - now).total_seconds()), _MAX_REQUEUE_SECONDS)
    spec = artifact.get("spec") or {}
    problem = _problem(artifact)
    fields: dict[str, Any] = {"expiresAt": format_time(end) if end is not None else None}
    if problem is not None:
        phase, (reason, message) = "Invalid", problem
    else:
        uri = _uri(artifact)
        phase, reason = "Ready", "Recorded"
        message = f"content at {uri} (a recorded location: jangar does not copy or upload content)"
        fields.update(uri=uri, checksum=spec.get("checksum"), sizeBytes=spec.get("sizeBytes"))
    invalid = problem is not None
    generation = meta.get("generation")
    status = compose_status(
        artifact.get("status"),
        phase=phase,
        conditions=[Cond("InvalidSpec", invalid, reason if invalid else "Valid", message if invalid else "")],
        generation=generation,
        now=now,
        fields=fields,
        summary_reason=reason,
        summary_message=message,
    )
    status["conditions"] = compose_status(
        {"conditions": status["conditions"]},
        phase=None,
        conditions=[Cond("Ready", not invalid, reason, message)],
        generation=generation,
        now=now,
        summary=False,
    )["conditions"]
    return ArtifactPlan(phase, reason, message, status=status, requeue_after=requeue)


def _now() -> datetime:
    return datetime.now(UTC)


class ArtifactReconciler:
    def __init__(
        self,
        client: Client,
        cache: CacheReader,
        events: Recorder,
        clock: Callable[[], datetime] = _now,
        metrics: StorageMetrics | None = None,
    ) -> None:
        self.client = client
        self.cache = cache
        self.events = events
        self.clock = clock
        self.metrics = metrics

    async def reconcile(self, req: Request) -> Result | None:
        artifact = self.cache.get(ARTIFACTS, req.name, req.namespace)
        if artifact is None:
            return None
        now = self.clock()
        plan = decide_artifact(artifact, now)
        ns = str(artifact["metadata"]["namespace"])
        if plan.delete:
            self.events.normal(artifact, plan.reason, plan.message)
            uid = artifact["metadata"].get("uid")
            await self.client.delete(ARTIFACTS, req.name, ns, uid=uid, ignore_not_found=True)
            if self.metrics is not None:
                self.metrics.artifacts_expired.labels(ns).inc()
            log.info("expired: deleted", kind="Artifact", namespace=ns, name=req.name)
            return None
        if plan.status is not None:
            old_phase = (artifact.get("status") or {}).get("phase")
            written = await write_status(self.client, ARTIFACTS, artifact, plan.status, now=now)
            if written is not None and old_phase != plan.phase and plan.phase == "Invalid":
                self.events.warning(written, plan.reason, plan.message)
        return Result(requeue_after=plan.requeue_after) if plan.requeue_after else None


async def create_run_artifacts(
    client: Client,
    objects: Sequence[Mapping[str, Any]],
    owner_uid: str | None,
    *,
    on_created: Callable[[Mapping[str, Any]], None] | None = None,
) -> int:
    """Create a finished run's Artifacts; one already there (ours: adopted; another owner's: left alone,
    logged) is not an error. Returns how many were created (`on_created` is called with each)."""
    created = 0
    for obj in objects:
        meta = obj["metadata"]
        try:
            await client.create(ARTIFACTS, dict(obj))
            created += 1
            if on_created is not None:
                on_created(obj)
        except AlreadyExistsError:
            existing: JsonObject = await client.get(ARTIFACTS, meta["name"], meta["namespace"])
            if owner_uid and controller_uid(existing) != owner_uid:
                log.warning(
                    "artifact name taken by another owner; not recorded",
                    kind="Artifact",
                    namespace=meta["namespace"],
                    name=meta["name"],
                )
    return created
