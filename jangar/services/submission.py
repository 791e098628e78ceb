"""Building an AgentRun manifest from a submission: the one builder behind `POST /v1/agent-runs`, gRPC
`SubmitAgentRun` and `agentctl run submit` (kube mode and `--dry-run`).

Every surface fills the same `Submission`, so a run submitted any way looks the same to the controller. An
idempotency key becomes a deterministic object name, so two submissions with the same key create one
AgentRun (the API server's AlreadyExists is the arbiter, not a read-then-write; see `idempotency`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from jangar.api.refs import AGENTRUNS
from jangar.services.errors import InvalidRequest

__all__ = ["RUNTIME_TYPES", "Submission", "SubmissionError", "build_agent_run", "idempotent_name"]

RUNTIME_TYPES = ("job", "workflow", "temporal", "custom")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class SubmissionError(InvalidRequest):
    """The submission cannot become an AgentRun; the message says which field and why."""


@dataclass
class Submission:
    agent: str
    namespace: str
    implementation_spec: str | None = None
    runtime: str = "job"
    runtime_config: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    workload_image: str | None = None
    name: str | None = None
    generate_name: str | None = None
    idempotency_key: str | None = None
    secrets: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    resource_requests: dict[str, str] = field(default_factory=dict)
    """`spec.workload.resources.requests` (cpu, memory)."""
    memory_ref: str | None = None
    vcs_ref: str | None = None
    vcs_policy_mode: str | None = None
    vcs_policy_required: bool | None = None
    """With `vcs_policy_mode`, `spec.vcsPolicy` (`required` defaults to false when only the mode is set)."""
    budget_ref: str | None = None
    """`spec.budgetRef`: the Budget the run counts against (its Agent's when unset)."""


def _check_name(value: str, what: str) -> None:
    if len(value) > 253 or not _DNS_LABEL.match(value):
        raise SubmissionError(
            f"{what} {value!r} is not a valid Kubernetes name (lowercase letters, digits, '-')"
        )


def idempotent_name(key: str, prefix: str = "run") -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"{prefix}-{digest}"


def build_agent_run(sub: Submission) -> dict[str, Any]:
    """Validate the submission and return the AgentRun manifest."""
    if not sub.agent:
        raise SubmissionError("an agent is required (--agent / agentRef)")
    _check_name(sub.agent, "agent")
    _check_name(sub.namespace, "namespace")
    if not sub.implementation_spec:
        raise SubmissionError("an implementation spec is required (--impl / implementationSpecRef)")
    _check_name(sub.implementation_spec, "implementation spec")
    if sub.runtime not in RUNTIME_TYPES:
        raise SubmissionError(f"runtime must be one of {', '.join(RUNTIME_TYPES)}, got {sub.runtime!r}")
    for key in sub.parameters:
        if not key:
            raise SubmissionError("parameter names must not be empty")
    metadata: dict[str, Any] = {"namespace": sub.namespace}
    if sub.labels:
        metadata["labels"] = dict(sub.labels)
    if sub.name:
        _check_name(sub.name, "name")
        metadata["name"] = sub.name
    elif sub.idempotency_key:
        metadata["name"] = idempotent_name(sub.idempotency_key, prefix=sub.agent[:40])
    else:
        metadata["generateName"] = sub.generate_name or f"{sub.agent[:50]}-"
    runtime: dict[str, Any] = {"type": sub.runtime}
    if sub.runtime_config:
        runtime["config"] = dict(sub.runtime_config)
    spec: dict[str, Any] = {
        "agentRef": {"name": sub.agent},
        "implementationSpecRef": {"name": sub.implementation_spec},
        "runtime": runtime,
    }
    if sub.parameters:
        spec["parameters"] = dict(sub.parameters)
    if sub.runtime == "workflow":
        # A workflow needs at least one step; like the reference, submit one step named after the stage.
        stage = sub.parameters.get("stage") or str(sub.runtime_config.get("stage") or "") or "implement"
        spec["workflow"] = {"steps": [{"name": stage, "parameters": {"stage": stage}}]}
    workload: dict[str, Any] = {}
    if sub.workload_image:
        workload["image"] = sub.workload_image
    if sub.resource_requests:
        workload["resources"] = {"requests": dict(sub.resource_requests)}
    if workload:
        spec["workload"] = workload
    if sub.memory_ref:
        _check_name(sub.memory_ref, "memory")
        spec["memoryRef"] = {"name": sub.memory_ref}
    if sub.vcs_ref:
        _check_name(sub.vcs_ref, "version control provider")
        spec["vcsRef"] = {"name": sub.vcs_ref}
    if sub.vcs_policy_mode or sub.vcs_policy_required:
        policy: dict[str, Any] = {"required": bool(sub.vcs_policy_required)}
        if sub.vcs_policy_mode:
            policy["mode"] = sub.vcs_policy_mode
        spec["vcsPolicy"] = policy
    if sub.budget_ref:
        _check_name(sub.budget_ref, "budget")
        spec["budgetRef"] = {"name": sub.budget_ref}
    if sub.idempotency_key:
        spec["idempotencyKey"] = sub.idempotency_key
    if sub.secrets:
        spec["secrets"] = list(sub.secrets)
    return {"apiVersion": AGENTRUNS.api_version, "kind": AGENTRUNS.kind, "metadata": metadata, "spec": spec}
