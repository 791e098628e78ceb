"""The `artifacts.proompteng.ai` group: Artifact, a stored output of a run."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from jangar.api import groups
from jangar.api.common import OptionalNameRef
from jangar.api.meta import KubeModel, Resource, ResourceStatus
from jangar.api.schema import Int32


class ArtifactLifecycle(KubeModel):
    ttl_days: Int32 | None = Field(default=None, ge=0)


class ArtifactSpec(KubeModel):
    storage_ref: OptionalNameRef | None = None
    lifecycle: ArtifactLifecycle | None = None


class ArtifactStatus(ResourceStatus):
    uri: str | None = None
    checksum: str | None = None


class Artifact(Resource[ArtifactSpec, ArtifactStatus]):
    """A stored output of a run."""

    GROUP: ClassVar[str] = groups.ARTIFACTS
    KIND: ClassVar[str] = "Artifact"

    spec: ArtifactSpec = Field(default_factory=ArtifactSpec)
    status: ArtifactStatus | None = None
