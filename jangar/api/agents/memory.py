"""Memory: a backing store an agent can remember into, reached through a Secret."""

from __future__ import annotations

from typing import ClassVar, Literal

from jangar.api import groups
from jangar.api.common import SecretKeyRef
from jangar.api.meta import KubeModel, Resource, ResourceStatus
from jangar.api.schema import Timestamp

MemoryType = Literal["postgres", "redis", "weaviate", "pinecone", "custom"]


class MemoryConnection(KubeModel):
    secret_ref: SecretKeyRef
    """The Secret with the connection string (key `url`, `uri` or `connectionString` when unset)."""


class MemorySpec(KubeModel):
    type: MemoryType
    connection: MemoryConnection
    default: bool = False
    """The namespace's default Memory for runs and agents that name none."""
    capabilities: list[str] | None = None


class MemoryStatus(ResourceStatus):
    last_checked_at: Timestamp | None = None
    """When the connection Secret was last verified."""


class Memory(Resource[MemorySpec, MemoryStatus]):
    """A backing store agents can remember into, reached through a Secret."""

    GROUP: ClassVar[str] = groups.AGENTS
    KIND: ClassVar[str] = "Memory"

    spec: MemorySpec
    status: MemoryStatus | None = None
