"""Small shapes several kinds share: references to other objects, env vars and subjects."""

from __future__ import annotations

from pydantic import Field

from jangar.api.meta import KubeModel


class NameRef(KubeModel):
    """A reference to another object in the same namespace, by name."""

    name: str = Field(min_length=1)
    """Name of the referenced object."""


class OptionalNameRef(KubeModel):
    """A same-namespace reference whose name the schema does not require (Orchestration steps)."""

    name: str | None = None


class SecretKeyRef(KubeModel):
    """A key in a Secret of the same namespace; the consumer supplies a default key when it is absent."""

    name: str = Field(min_length=1)
    """Name of the Secret."""
    key: str | None = None
    """Key inside the Secret."""


class ConfigMapKeyRef(KubeModel):
    """A key in a ConfigMap of the same namespace."""

    name: str = Field(min_length=1)
    """Name of the ConfigMap."""
    key: str | None = None
    """Key inside the ConfigMap."""


class EnvVar(KubeModel):
    """A literal environment variable."""

    name: str
    value: str


class Subject(KubeModel):
    """An object a policy applies to, for example an Agent or an Orchestration."""

    kind: str
    name: str
    namespace: str | None = None


class JobRef(KubeModel):
    """The Kubernetes Job that executes a run or a step."""

    name: str | None = None
    namespace: str | None = None
    uid: str | None = None


class ResourceRef(KubeModel):
    """Any object a step created or observed."""

    api_version: str | None = None
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
