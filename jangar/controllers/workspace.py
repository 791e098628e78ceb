"""The Workspace controller: a PersistentVolumeClaim per Workspace, its binding as the Workspace's phase,
and the Workspace's lifetime.

`decide_workspace(workspace, claim, now)` is pure (table-tested); `WorkspaceReconciler` reads the Workspace
and its claim from the cache, applies the plan (the claim first, then one status write) and returns
`requeue_after` for the expiry moment. The lifetime is checked before anything is created: an expired
Workspace deletes its claim and stays `Expired`; it never creates one again (the reference applied the PVC
first, so every pass after the expiry created it again and deleted it again, §6.6).

| Workspace | claim | phase / reason | does |
|---|---|---|---|
| past `ttlSeconds` (or already Expired) | any of ours | Expired / Expired | deletes the claim |
| invalid spec (size, access modes, name) | — | Invalid / `MissingSize`… | nothing (an existing claim is kept) |
| valid | none | Pending / Provisioning | creates the claim |
| valid | held by another owner | Pending / ClaimNameTaken | nothing, looks again in 30 s |
| valid | Bound / Lost / other | Ready / Bound, Failed / Lost, Pending / Pending | status only |
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from jangar.api.contract import WORKSPACE_EXPIRED
from jangar.conditions import format_time
from jangar.controllers.kinds import PVCS, WORKSPACES
from jangar.controllers.status import Cond, compose_status, write_status
from jangar.controllers.storage_metrics import StorageMetrics
from jangar.runtime import (
    AlreadyExistsError,
    CacheReader,
    Client,
    Recorder,
    Request,
    Result,
    controller_uid,
)
from jangar.runtime.controllerutil import owner_reference
from jangar.scheduler.workspaces import (
    claim_manifest,
    claim_phase,
    expires_at,
    is_expired,
    spec_problem,
    workspace_mount_path,
)

log = structlog.get_logger("jangar.controllers.workspace")

__all__ = ["FOREIGN_CLAIM_REQUEUE_SECONDS", "WorkspacePlan", "WorkspaceReconciler", "decide_workspace"]

FOREIGN_CLAIM_REQUEUE_SECONDS = 30.0
_MAX_REQUEUE_SECONDS = 3600.0


@dataclass(frozen=True)
class WorkspacePlan:
    phase: str | None = None
    reason: str = ""
    message: str = ""
    create: dict[str, Any] | None = None
    delete_claim: str | None = None
    status: dict[str, Any] | None = None
    requeue_after: float | None = None


def _owned(claim: Mapping[str, Any], workspace: Mapping[str, Any]) -> bool:
    uid = (workspace.get("metadata") or {}).get("uid")
    return bool(uid) and controller_uid(dict(claim)) == uid


def _until_expiry(workspace: Mapping[str, Any], now: datetime) -> float | None:
    end = expires_at(workspace)
    if end is None:
        return None
    return min(max(1.0, (end - now).total_seconds()), _MAX_REQUEUE_SECONDS)


def decide_workspace(
    workspace: Mapping[str, Any], claim: Mapping[str, Any] | None, now: datetime
) -> WorkspacePlan:
    """This pass's plan for `workspace`, whose claim (same name, from the cache) is `claim`."""
    meta = workspace.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return WorkspacePlan()  # the claim goes with it (ownerReference)
    name = str(meta.get("name"))
    end = expires_at(workspace)
    fields: dict[str, Any] = {
        "claimName": name,
        "mountPath": workspace_mount_path(name),
        "expiresAt": format_time(end) if end is not None else None,
    }
    ours = claim is not None and _owned(claim, workspace)
    if is_expired(workspace, now):
        when = f" at {format_time(end)}" if end is not None else ""
        message = f"the workspace expired{when}; its PersistentVolumeClaim {name} is deleted"
        fields.update(volumeName=None, capacity=None)
        if end is None:  # expired once, then its TTL was removed: it stays expired
            fields.pop("expiresAt")
        plan = _plan(workspace, "Expired", WORKSPACE_EXPIRED, message, fields, bound=False, now=now)
        return plan if not ours else _with(plan, delete_claim=name)
    requeue = _until_expiry(workspace, now)
    problem = spec_problem(workspace)
    if problem is not None:
        reason, message = problem
        return _with(
            _plan(workspace, "Invalid", reason, message, fields, bound=False, invalid=True, now=now),
            requeue_after=requeue,
        )
    if claim is None:
        message = f"creating PersistentVolumeClaim {name}"
        plan = _plan(workspace, "Pending", "Provisioning", message, fields, bound=False, now=now)
        owner = owner_reference(dict(workspace), WORKSPACES) if meta.get("uid") else None
        return _with(plan, create=claim_manifest(workspace, owner), requeue_after=requeue)
    if not ours:
        message = f"PersistentVolumeClaim {name} exists and is not controlled by this Workspace"
        plan = _plan(workspace, "Pending", "ClaimNameTaken", message, fields, bound=False, now=now)
        return _with(
            plan, requeue_after=min(requeue or FOREIGN_CLAIM_REQUEUE_SECONDS, FOREIGN_CLAIM_REQUEUE_SECONDS)
        )
    if (claim.get("metadata") or {}).get("deletionTimestamp"):
        message = f"PersistentVolumeClaim {name} is being deleted (in use by a pod?)"
        plan = _plan(workspace, "Pending", "ClaimDeleting", message, fields, bound=False, now=now)
        return _with(plan, requeue_after=min(requeue or 10.0, 10.0))
    phase, reason, message = claim_phase(claim)
    claim_status = claim.get("status") or {}
    fields["volumeName"] = (claim.get("spec") or {}).get("volumeName") or None
    fields["capacity"] = (claim_status.get("capacity") or {}).get("storage")
    plan = _plan(workspace, phase, reason, message, fields, bound=reason == "Bound", now=now)
    return _with(plan, requeue_after=requeue)


def _with(plan: WorkspacePlan, **changes: Any) -> WorkspacePlan:
    return WorkspacePlan(**{**plan.__dict__, **changes})


def _plan(
    workspace: Mapping[str, Any],
    phase: str,
    reason: str,
    message: str,
    fields: Mapping[str, Any],
    *,
    bound: bool,
    now: datetime,
    invalid: bool = False,
) -> WorkspacePlan:
    conditions = [
        Cond("InvalidSpec", invalid, reason if invalid else "Valid", message if invalid else ""),
        Cond("Bound", bound, reason, "" if bound else message),
    ]
    status = compose_status(
        workspace.get("status"),
        phase=phase,
        conditions=conditions,
        generation=(workspace.get("metadata") or {}).get("generation"),
        now=now,
        fields=fields,
        summary_reason=reason,
        summary_message=message,
    )
    # Ready carries the reason and message of every phase (summary_conditions states it only when True).
    status["conditions"] = compose_status(
        {"conditions": status["conditions"]},
        phase=None,
        conditions=[Cond("Ready", phase == "Ready", reason, message)],
        generation=(workspace.get("metadata") or {}).get("generation"),
        now=now,
        summary=False,
    )["conditions"]
    return WorkspacePlan(phase=phase, reason=reason, message=message, status=status)


def _now() -> datetime:
    return datetime.now(UTC)


class WorkspaceReconciler:
    """Read → `decide_workspace` → apply (claim, then status). One per manager."""

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
        workspace = self.cache.get(WORKSPACES, req.name, req.namespace)
        if workspace is None:
            return None
        claim = self.cache.get(PVCS, req.name, req.namespace)
        now = self.clock()
        plan = decide_workspace(workspace, claim, now)
        ns = str(workspace["metadata"]["namespace"])
        if plan.create is not None:
            try:
                await self.client.create(PVCS, plan.create)
                log.info("created claim", kind="Workspace", namespace=ns, name=req.name)
            except AlreadyExistsError:
                # Not in the cache yet (ours, just created) or not labelled (someone else's): look again.
                existing = await self.client.get(PVCS, req.name, ns)
                plan = decide_workspace(workspace, existing, now)
        if plan.delete_claim is not None:
            await self.client.delete(PVCS, plan.delete_claim, ns, ignore_not_found=True)
            log.info("expired: deleted claim", kind="Workspace", namespace=ns, name=req.name)
        if plan.status is not None:
            old_phase = (workspace.get("status") or {}).get("phase")
            written = await write_status(self.client, WORKSPACES, workspace, plan.status, now=now)
            expired = written is not None and old_phase != plan.phase and plan.phase == "Expired"
            if expired and self.metrics is not None:
                self.metrics.workspace_expirations.labels(ns).inc()
            if written is not None and old_phase != plan.phase:
                warning = plan.phase in ("Failed", "Invalid") or plan.reason == "ClaimNameTaken"
                self.events.event(written, "Warning" if warning else "Normal", plan.reason, plan.message)
        return Result(requeue_after=plan.requeue_after) if plan.requeue_after else None
