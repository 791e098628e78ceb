"""Resolve an AgentRun's references from the controller's cache: agent → provider → implementation →
memory, plus every workflow step's implementation and the namespace's SecretBindings.

`Lookup` is the cache seen through two calls, so this stays pure and testable with dicts. Missing objects
are recorded, not raised: validation turns them into `MissingAgent`/`MissingProvider`/… problems.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from jangar.api.shape import as_map, maps

__all__ = ["Lookup", "ObjectLookup", "Resolution", "resolve_run", "step_implementation"]


class Lookup(Protocol):
    """The controller cache, scoped to the run's namespace. `kind` is the Kubernetes kind (e.g. "Agent")."""

    def get(self, kind: str, name: str) -> Mapping[str, Any] | None: ...

    def list(self, kind: str) -> Iterable[Mapping[str, Any]]: ...


class ObjectLookup:
    """A `Lookup` over given objects (manifests from files, a list from the API server), by kind and name.

    `render` uses it in place of the cache; objects without a `kind` are ignored."""

    def __init__(self, objects: Iterable[Mapping[str, Any]] = ()) -> None:
        self._objects: dict[tuple[str, str], Mapping[str, Any]] = {}
        for obj in objects:
            self.add(obj)

    def add(self, obj: Mapping[str, Any]) -> None:
        """Add or replace (a later object of the same kind and name wins)."""
        kind, name = obj.get("kind"), as_map(obj.get("metadata")).get("name")
        if isinstance(kind, str) and isinstance(name, str):
            self._objects[(kind, name)] = obj

    def get(self, kind: str, name: str) -> Mapping[str, Any] | None:
        return self._objects.get((kind, name))

    def list(self, kind: str) -> Iterable[Mapping[str, Any]]:
        return [obj for (k, _), obj in sorted(self._objects.items()) if k == kind]


def _ref_name(value: Any) -> str | None:
    if isinstance(value, Mapping):
        name = value.get("name")
        if isinstance(name, str) and name.strip():
            return name.strip()
    return None


def _inline(value: Any) -> Mapping[str, Any] | None:
    if isinstance(value, Mapping) and isinstance(value.get("inline"), Mapping):
        inline: Mapping[str, Any] = value["inline"]
        return inline
    return None


@dataclass(frozen=True)
class Resolution:
    """What a run references, resolved. `*_ref` holds the name asked for, even when the object is missing."""

    agent_ref: str | None
    agent: Mapping[str, Any] | None
    provider_ref: str | None
    provider: Mapping[str, Any] | None
    implementation_ref: str | None
    implementation: Mapping[str, Any] | None  # the ImplementationSpec *spec* (inline or referenced)
    memory_ref: str | None
    memory: Mapping[str, Any] | None
    vcs_ref: str | None
    #: step name → its implementation spec (None when a step's reference is missing)
    step_implementations: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)
    secret_bindings: tuple[Mapping[str, Any], ...] = ()
    #: `spec.workspaceRef` (issue 11): the name asked for, and the Workspace when it exists
    workspace_ref: str | None = None
    workspace: Mapping[str, Any] | None = None


def step_implementation(
    step: Mapping[str, Any], run_implementation: Mapping[str, Any] | None, lookup: Lookup
) -> Mapping[str, Any] | None:
    """A step's implementation: its inline, else its reference, else the run's (reference §3.7)."""
    inline = _inline(step.get("implementation"))
    if inline is not None:
        return inline
    ref = _ref_name(step.get("implementationSpecRef"))
    if ref is not None:
        found = lookup.get("ImplementationSpec", ref)
        spec = found.get("spec") if found else None
        return spec if isinstance(spec, Mapping) else None
    return run_implementation


def resolve_run(run: Mapping[str, Any], lookup: Lookup) -> Resolution:
    spec = as_map(run.get("spec"))
    agent_ref = _ref_name(spec.get("agentRef"))
    agent = lookup.get("Agent", agent_ref) if agent_ref else None
    agent_spec = (agent or {}).get("spec") or {}
    provider_ref = _ref_name(agent_spec.get("providerRef"))
    provider = lookup.get("AgentProvider", provider_ref) if provider_ref else None

    implementation_ref = _ref_name(spec.get("implementationSpecRef"))
    implementation = _inline(spec.get("implementation"))
    if implementation is None and implementation_ref:
        found = lookup.get("ImplementationSpec", implementation_ref)
        impl_spec = (found or {}).get("spec")
        implementation = impl_spec if isinstance(impl_spec, Mapping) else None

    memory_ref = _ref_name(spec.get("memoryRef")) or _ref_name(agent_spec.get("memoryRef"))
    if memory_ref:
        memory = lookup.get("Memory", memory_ref)
    else:
        memory = next(
            (m for m in lookup.list("Memory") if as_map(m.get("spec")).get("default") is True), None
        )

    vcs_ref = (
        _ref_name(spec.get("vcsRef"))
        or _ref_name((implementation or {}).get("vcsRef"))
        or _ref_name(agent_spec.get("vcsRef"))
    )
    steps = maps(as_map(spec.get("workflow")).get("steps"))
    step_impls = {
        str(step["name"]): step_implementation(step, implementation, lookup)
        for step in steps
        if isinstance(step, Mapping) and isinstance(step.get("name"), str) and step["name"]
    }
    return Resolution(
        agent_ref=agent_ref,
        agent=agent,
        provider_ref=provider_ref,
        provider=provider,
        implementation_ref=implementation_ref,
        implementation=implementation,
        memory_ref=memory_ref,
        memory=memory,
        vcs_ref=vcs_ref,
        step_implementations=step_impls,
        secret_bindings=tuple(lookup.list("SecretBinding")),
        **_workspace(spec, lookup),
    )


def _workspace(spec: Mapping[str, Any], lookup: Lookup) -> dict[str, Any]:
    ref = _ref_name(spec.get("workspaceRef"))
    return {"workspace_ref": ref, "workspace": lookup.get("Workspace", ref) if ref else None}
