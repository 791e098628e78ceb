"""What every jangar kind shares: the wire conventions, object metadata, conditions and the status core.

Wire conventions: Python attributes are snake_case, the Kubernetes wire form is camelCase (an alias per
field, generated), and `to_k8s()` dumps exactly the JSON the API server stores (aliases, no `None`s).
Models ignore unknown keys on input unless they are free-form (`extra="allow"`), mirroring what the API
server's pruning does, so reading an object never fails on a field a newer schema added.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Generic, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from jangar.api.schema import Int64, ListMap, Timestamp

API_VERSION_SUFFIX = "v1alpha1"

CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"


class KubeModel(BaseModel):
    """Base of every API model: camelCase aliases, attribute docstrings become schema descriptions."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
        extra="ignore",
    )

    def to_k8s(self) -> dict[str, Any]:
        """The object as the API server stores it: camelCase keys, RFC 3339 times, unset fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class OpenModel(KubeModel):
    """A model whose object keeps keys the schema does not name (`x-kubernetes-preserve-unknown-fields`).

    Unknown keys are kept verbatim on input and written back on output, so nothing a user added is lost.
    """

    model_config = ConfigDict(extra="allow")


class OwnerReference(KubeModel):
    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(KubeModel):
    """The standard Kubernetes object metadata; fields not named here (managedFields, ...) are kept."""

    model_config = ConfigDict(extra="allow")

    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: Timestamp | None = None
    deletion_timestamp: Timestamp | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    finalizers: list[str] | None = None
    owner_references: list[OwnerReference] | None = None


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(KubeModel):
    """One observation of the object's state, in the standard Kubernetes condition shape."""

    # The reference used metav1.Condition for its 7 agents.proompteng.ai kinds and a loose shape for the
    # rest; one shape everywhere lets a single status writer and `kubectl wait --for=condition=X` serve all
    # kinds. `message` may be omitted (it defaults to ""); `reason` is required so a condition says why.

    type: str = Field(max_length=316, pattern=CONDITION_TYPE_PATTERN)
    """Condition type in CamelCase, e.g. Ready, Succeeded, InvalidSpec."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: str = Field(min_length=1, max_length=1024, pattern=CONDITION_REASON_PATTERN)
    """A CamelCase machine-readable reason for the last transition."""
    message: str = Field(default="", max_length=32768)
    """A human-readable explanation."""
    last_transition_time: Timestamp
    """When the status last changed (not when it was last written)."""
    observed_generation: Int64 | None = Field(default=None, ge=0)
    """The .metadata.generation the condition was computed from."""


Conditions = Annotated[list[Condition], ListMap(("type",))]
"""A condition list keyed by type: the API server rejects two conditions of the same type."""


class ResourceStatus(KubeModel):
    """The status every kind has; kinds subclass it to add their own fields."""

    phase: str | None = None
    """A one-word summary of the object's state (for example Pending, Running, Ready, Failed)."""
    observed_generation: Int64 | None = Field(default=None, ge=0)
    """The .metadata.generation this status was computed from."""
    updated_at: Timestamp | None = None
    """When the controller last changed this status."""
    conditions: Conditions | None = None
    """The latest observations of the object's state."""


SpecT = TypeVar("SpecT", bound=KubeModel)
StatusT = TypeVar("StatusT", bound=ResourceStatus)


class Resource(KubeModel, Generic[SpecT, StatusT]):
    """A namespaced custom object. Subclasses set `GROUP` and `KIND` and declare `spec` and `status`.

    `apiVersion` and `kind` are filled in when absent and checked when present, so a Tool manifest can
    never be parsed as an Agent by mistake.
    """

    GROUP: ClassVar[str]
    KIND: ClassVar[str]
    VERSION: ClassVar[str] = API_VERSION_SUFFIX

    api_version: str = ""
    kind: str = ""
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: SpecT
    status: StatusT | None = None

    @classmethod
    def api_version_string(cls) -> str:
        return f"{cls.GROUP}/{cls.VERSION}"

    @model_validator(mode="after")
    def _check_identity(self) -> Self:
        expected = self.api_version_string()
        if not self.api_version:
            self.api_version = expected
        elif self.api_version != expected:
            raise ValueError(f"apiVersion must be {expected!r} for {self.KIND}, got {self.api_version!r}")
        if not self.kind:
            self.kind = self.KIND
        elif self.kind != self.KIND:
            raise ValueError(f"kind must be {self.KIND!r}, got {self.kind!r}")
        return self
