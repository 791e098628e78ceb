"""The `security.proompteng.ai` group: SecretBinding, which Secrets which subjects may use."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from jangar.api import groups
from jangar.api.common import Subject
from jangar.api.meta import KubeModel, Resource, ResourceStatus


class SecretBindingSpec(KubeModel):
    subjects: list[Subject] | None = None
    allowed_secrets: list[str] | None = None
    """Secret names the subjects may use."""


class SecretBindingStatus(ResourceStatus):
    pass


class SecretBinding(Resource[SecretBindingSpec, SecretBindingStatus]):
    """Which Secrets which subjects (agents, orchestrations) may use."""

    GROUP: ClassVar[str] = groups.SECURITY
    KIND: ClassVar[str] = "SecretBinding"

    spec: SecretBindingSpec = Field(default_factory=SecretBindingSpec)
    status: SecretBindingStatus | None = None
