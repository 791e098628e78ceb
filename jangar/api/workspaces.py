"""The `workspaces.proompteng.ai` group: Workspace, a PersistentVolumeClaim with a lifetime."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from jangar.api import groups
from jangar.api.meta import KubeModel, Resource, ResourceStatus
from jangar.api.schema import Int32, Timestamp


class WorkspaceSpec(KubeModel):
    storage_class_name: str | None = None
    size: str | None = None
    """Requested storage as a quantity, e.g. 10Gi."""
    access_modes: list[str] | None = None
    ttl_seconds: Int32 | None = Field(default=None, ge=0)
    """Delete the volume this long after the Workspace was created; 0 or unset keeps it."""


class WorkspaceStatus(ResourceStatus):
    volume_name: str | None = None
    expires_at: Timestamp | None = None


class Workspace(Resource[WorkspaceSpec, WorkspaceStatus]):
    """A PersistentVolumeClaim for runs to share, with an optional lifetime."""

    GROUP: ClassVar[str] = groups.WORKSPACES
    KIND: ClassVar[str] = "Workspace"

    spec: WorkspaceSpec = Field(default_factory=WorkspaceSpec)
    status: WorkspaceStatus | None = None
