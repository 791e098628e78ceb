"""The resolved inputs of one run (or one workflow step): the cache's raw dicts, bundled.

The reconciler resolves agent → provider → implementation → memory → VCS from its cache and hands the
result over as plain dicts; every builder in this package is a pure function of a `RunContext` and the
`Settings`, so the same inputs always give the same manifests (idempotent creates, adoption by name).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jangar.api.shape import as_map
from jangar.scheduler.system_prompt import SystemPrompt

__all__ = ["RunContext", "StepRef", "VcsRuntime", "spec_of"]


def spec_of(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """`obj["spec"]` as a mapping, or an empty one."""
    if not obj:
        return {}
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


@dataclass(frozen=True)
class StepRef:
    """One attempt of one workflow step. `index` is 1-based, `attempt` starts at 1."""

    name: str
    index: int
    attempt: int
    spec: Mapping[str, Any] = field(default_factory=dict)  # the `spec.workflow.steps[i]` entry

    @property
    def key(self) -> tuple[int, int]:
        return (self.index, self.attempt)


@dataclass(frozen=True)
class VcsRuntime:
    """What VCS resolution hands the Job builder: never a literal secret, only references."""

    context: Mapping[str, Any]  # goes to run.json `vcs` and to templates as `vcs`
    env: tuple[Mapping[str, Any], ...] = ()  # EnvVar dicts; tokens only via valueFrom.secretKeyRef
    volumes: tuple[Mapping[str, Any], ...] = ()
    volume_mounts: tuple[Mapping[str, Any], ...] = ()
    secret_names: tuple[str, ...] = ()  # secrets the run reads, for policy checks


@dataclass(frozen=True)
class RunContext:
    """A run with everything it references resolved.

    `implementation` is the ImplementationSpec *spec* (inline or referenced); `implementation_name` the
    referenced object's name, if any (it becomes a label). `parameters` are the effective parameters (run
    overlaid with step, plus injected base/head) and `metadata` the contract metadata built from them.
    """

    run: Mapping[str, Any]
    agent: Mapping[str, Any]
    provider: Mapping[str, Any]
    implementation: Mapping[str, Any]
    parameters: Mapping[str, str]
    metadata: Mapping[str, str] = field(default_factory=dict)
    implementation_name: str | None = None
    memory: Mapping[str, Any] | None = None
    vcs: VcsRuntime | None = None
    step: StepRef | None = None
    #: the Workspace of `spec.workspaceRef`, mounted at /workspace/<name> (issue 11)
    workspace: Mapping[str, Any] | None = None
    #: the Agent's resolved system prompt and the sha256 the pod must find (issue 13 item 3)
    system_prompt: SystemPrompt | None = None
    system_prompt_sha256: str | None = None

    @property
    def name(self) -> str:
        return str(self.run["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.run["metadata"].get("namespace") or "default")

    @property
    def uid(self) -> str | None:
        uid = self.run["metadata"].get("uid")
        return str(uid) if uid else None

    @property
    def spec(self) -> Mapping[str, Any]:
        return spec_of(self.run)

    @property
    def runtime_config(self) -> Mapping[str, Any]:
        runtime = self.spec.get("runtime")
        config = runtime.get("config") if isinstance(runtime, Mapping) else None
        return config if isinstance(config, Mapping) else {}

    @property
    def provider_name(self) -> str:
        return str(as_map(self.provider.get("metadata")).get("name") or "")

    @property
    def agent_name(self) -> str:
        return str(as_map(self.agent.get("metadata")).get("name") or "")

    @property
    def workload(self) -> Mapping[str, Any]:
        """The step's workload over the run's, field by field."""
        base = self.spec.get("workload")
        merged: dict[str, Any] = dict(base) if isinstance(base, Mapping) else {}
        if self.step is not None:
            override = self.step.spec.get("workload")
            if isinstance(override, Mapping):
                merged.update({k: v for k, v in override.items() if v not in (None, "", [], {})})
        return merged
