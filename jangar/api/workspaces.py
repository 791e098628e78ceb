"""The `workspaces.proompteng.ai` group: Workspace, a PersistentVolumeClaim with a lifetime."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from jangar.api import groups
from jangar.api.meta import KubeModel, Resource, ResourceStatus
from jangar.api.schema import Int32, Timestamp


class WorkspaceSpec(KubeModel):
    storage_class_name: str | None = None
    """The PVC's StorageClass; unset: the cluster's default class."""
    size: str | None = None
    """Requested storage as a quantity, e.g. 10Gi."""
    access_modes: list[str] | None = None
    """Default `[ReadWriteOnce]`."""
    ttl_seconds: Int32 | None = Field(default=None, ge=0)
    """Delete the volume this long after the Workspace was created; 0 or unset keeps it. An expired
    Workspace stays Expired: its PVC is deleted and never created again."""


class WorkspaceStatus(ResourceStatus):
    claim_name: str | None = None
    """The PersistentVolumeClaim (named like the Workspace)."""
    volume_name: str | None = None
    """The PersistentVolume bound to the claim."""
    capacity: str | None = None
    """The bound volume's capacity, from the PVC status."""
    mount_path: str | None = None
    """Where runs with `spec.workspaceRef` see it."""
    expires_at: Timestamp | None = None


class Workspace(Resource[WorkspaceSpec, WorkspaceStatus]):
    """A PersistentVolumeClaim for runs to share, with an optional lifetime."""

    GROUP: ClassVar[str] = groups.WORKSPACES
    KIND: ClassVar[str] = "Workspace"

    spec: WorkspaceSpec = Field(default_factory=WorkspaceSpec)
    status: WorkspaceStatus | None = None
