"""Workspaces, as pure functions: the PVC a Workspace asks for, its lifetime, what a run sees of it.

A Workspace (`workspaces.proompteng.ai`) is a PersistentVolumeClaim with the Workspace's name, the label
`workspaces.proompteng.ai/workspace` and a controller ownerReference. `spec.ttlSeconds` ends its life
`ttlSeconds` after its creation: from then on it is `Expired` for good (its PVC is deleted and never
created again, unlike the reference, which applied the PVC before looking at the TTL). A run with
`spec.workspaceRef` mounts the claim at `/workspace/<workspace>` (docs/workspaces.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jangar.api.contract import LABEL_WORKSPACE, WORKSPACE_EXPIRED, WORKSPACE_MOUNT_ROOT
from jangar.api.shape import as_list, as_map
from jangar.conditions import parse_time
from jangar.scheduler.naming import StepKey, dns_label, label_value
from jangar.scheduler.quantity import QuantityError, parse_quantity

__all__ = [
    "DEFAULT_ACCESS_MODES",
    "WorkspaceProblem",
    "claim_manifest",
    "claim_phase",
    "expires_at",
    "is_expired",
    "spec_problem",
    "workspace_mount",
    "workspace_mount_path",
    "workspace_problem",
    "workspace_volume_name",
]

DEFAULT_ACCESS_MODES = ("ReadWriteOnce",)
_ACCESS_MODES = frozenset({"ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"})
#: names of files the Job builder puts directly under /workspace: a Workspace may not shadow them
_RESERVED_NAMES = frozenset({"run.json", "agent-runner.json"})


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _name(obj: Mapping[str, Any]) -> str:
    return str(as_map(obj.get("metadata")).get("name") or "")


def workspace_mount_path(name: str) -> str:
    return f"{WORKSPACE_MOUNT_ROOT}/{name}"


def workspace_volume_name(run_name: str, step: StepKey | None = None) -> str:
    """The pod volume of a run's Workspace (DNS label, distinct from the builder's other volumes)."""
    return dns_label(run_name, "ws", *(map(str, step) if step else ()))


def expires_at(workspace: Mapping[str, Any]) -> datetime | None:
    """creationTimestamp + ttlSeconds, when a positive TTL is set."""
    ttl = _spec(workspace).get("ttlSeconds")
    created = parse_time(as_map(workspace.get("metadata")).get("creationTimestamp"))
    if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl <= 0 or created is None:
        return None
    try:
        return created + timedelta(seconds=ttl)
    except OverflowError:  # past year 9999: never expires
        return None


def is_expired(workspace: Mapping[str, Any], now: datetime | None) -> bool:
    """Expired once (status says so, whatever the spec says now), or past its expiry time."""
    if as_map(workspace.get("status")).get("phase") == WORKSPACE_EXPIRED:
        return True
    end = expires_at(workspace)
    return end is not None and now is not None and now >= end


def spec_problem(workspace: Mapping[str, Any]) -> tuple[str, str] | None:
    """(reason, message) when the spec cannot become a PVC."""
    spec = _spec(workspace)
    size = spec.get("size")
    if not isinstance(size, str) or not size.strip():
        return "MissingSize", "spec.size is required (a quantity such as 10Gi)"
    try:
        if parse_quantity(size) <= 0:
            return "InvalidSize", f"spec.size {size!r} must be positive"
    except QuantityError as exc:
        return "InvalidSize", f"spec.size: {exc}"
    if not isinstance(spec.get("accessModes"), list | None):
        return "InvalidAccessMode", "spec.accessModes must be a list (ReadWriteOnce, ReadOnlyMany, ...)"
    modes = as_list(spec.get("accessModes")) or list(DEFAULT_ACCESS_MODES)
    unknown = [m for m in modes if not isinstance(m, str) or m not in _ACCESS_MODES]
    if unknown:
        return "InvalidAccessMode", f"spec.accessModes: unknown {', '.join(map(str, unknown))}"
    if _name(workspace) in _RESERVED_NAMES:
        return "InvalidName", f"a Workspace may not be named {_name(workspace)!r} (a file under /workspace)"
    return None


def claim_manifest(workspace: Mapping[str, Any], owner: Mapping[str, Any] | None) -> dict[str, Any]:
    """The PersistentVolumeClaim of a (valid) Workspace: same name, the workspace label, owned by it."""
    meta = workspace.get("metadata") or {}
    spec = _spec(workspace)
    metadata: dict[str, Any] = {
        "name": _name(workspace),
        "namespace": meta.get("namespace"),
        "labels": {LABEL_WORKSPACE: label_value(_name(workspace))},
    }
    if owner is not None:
        metadata["ownerReferences"] = [dict(owner)]
    claim_spec: dict[str, Any] = {
        "accessModes": list(as_list(spec.get("accessModes")) or DEFAULT_ACCESS_MODES),
        "resources": {"requests": {"storage": str(spec["size"]).strip()}},
    }
    if spec.get("storageClassName"):
        claim_spec["storageClassName"] = spec["storageClassName"]
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata, "spec": claim_spec}


def claim_phase(claim: Mapping[str, Any]) -> tuple[str, str, str]:
    """(Workspace phase, reason, message) from the PVC: Bound → Ready, Lost → Failed, else Pending."""
    status = claim.get("status") or {}
    phase = status.get("phase") or "Pending"
    name = _name(claim)
    volume = as_map(claim.get("spec")).get("volumeName")
    if phase == "Bound":
        return "Ready", "Bound", f"PersistentVolumeClaim {name} is bound to {volume}"
    if phase == "Lost":
        return "Failed", "Lost", f"PersistentVolumeClaim {name} lost its volume {volume or ''}".rstrip()
    storage_class = as_map(claim.get("spec")).get("storageClassName")
    where = f" (storage class {storage_class})" if storage_class else " (the default storage class)"
    return "Pending", "Pending", f"PersistentVolumeClaim {name} is waiting for a volume{where}"


@dataclass(frozen=True)
class WorkspaceProblem:
    reason: str
    message: str
    #: a problem the run waits out (the Workspace may still be created), not one that fails it
    missing: bool = False


def workspace_problem(
    ref: str, workspace: Mapping[str, Any] | None, now: datetime | None
) -> WorkspaceProblem | None:
    """Why a run cannot use Workspace `ref` (None: it can; a Pending claim is fine, the pod waits)."""
    if workspace is None:
        return WorkspaceProblem("MissingWorkspace", f"workspace {ref!r} not found", missing=True)
    if as_map(workspace.get("metadata")).get("deletionTimestamp"):
        return WorkspaceProblem("WorkspaceUnavailable", f"workspace {ref!r} is being deleted")
    if is_expired(workspace, now):
        end = expires_at(workspace)
        when = f" at {end.isoformat()}" if end is not None else ""
        return WorkspaceProblem("WorkspaceExpired", f"workspace {ref!r} expired{when}; its volume is deleted")
    problem = spec_problem(workspace)
    if problem is not None:
        return WorkspaceProblem("WorkspaceUnavailable", f"workspace {ref!r} is invalid: {problem[1]}")
    if as_map(workspace.get("status")).get("phase") == "Failed":
        return WorkspaceProblem("WorkspaceUnavailable", f"workspace {ref!r} failed (its volume was lost)")
    return None


def workspace_mount(
    workspace: Mapping[str, Any], run_name: str, step: StepKey | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(volume, volumeMount) of a Workspace's claim in a run's pod."""
    name = _name(workspace)
    volume_name = workspace_volume_name(run_name, step)
    volume = {"name": volume_name, "persistentVolumeClaim": {"claimName": name}}
    return volume, {"name": volume_name, "mountPath": workspace_mount_path(name)}
