"""The `artifacts.proompteng.ai` group: Artifact, a record of where one output of a run lives.

An Artifact records a location, a size and a checksum; jangar never copies or uploads content.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from jangar.api import groups
from jangar.api.common import NameRef, OptionalNameRef
from jangar.api.meta import KubeModel, Resource, ResourceStatus
from jangar.api.schema import Int32, Timestamp


class ArtifactLifecycle(KubeModel):
    ttl_days: Int32 | None = Field(default=None, ge=0)
    """Delete the Artifact object this many days after it was created; 0 or unset keeps it."""


class ArtifactSpec(KubeModel):
    storage_ref: OptionalNameRef | None = None
    """An object store the content was put in by the agent (its `key` is the object key)."""
    lifecycle: ArtifactLifecycle | None = None
    run_ref: NameRef | None = None
    """The AgentRun that produced it (set by the controller for run artifacts)."""
    uri: str | None = None
    """Where the content lives: `pvc://<claim>/<path>`, an URL, or a path in the run's pod."""
    path: str | None = None
    """The path the agent wrote, as in the provider's `outputArtifacts`."""
    key: str | None = None
    url: str | None = None
    size_bytes: int | None = Field(default=None, ge=0)
    checksum: str | None = None
    """`sha256:<64 hex digits>`."""


class ArtifactStatus(ResourceStatus):
    uri: str | None = None
    checksum: str | None = None
    size_bytes: int | None = None
    expires_at: Timestamp | None = None


class Artifact(Resource[ArtifactSpec, ArtifactStatus]):
    """A recorded output of a run: where it lives, its size and checksum."""

    GROUP: ClassVar[str] = groups.ARTIFACTS
    KIND: ClassVar[str] = "Artifact"

    spec: ArtifactSpec = Field(default_factory=ArtifactSpec)
    status: ArtifactStatus | None = None
