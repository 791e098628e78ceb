"""Building an AgentRun manifest from a submission, shared by `agentctl run submit` and `POST /v1/agent-runs`.

Both surfaces accept the same few fields; keeping one builder means a run submitted either way looks the
same to the controller. An idempotency key becomes a deterministic object name, so two submissions with the
same key create one AgentRun (the API server's AlreadyExists is the arbiter, not a read-then-write).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from jangar.api.groups import AGENTS

RUNTIME_TYPES = ("job", "workflow", "temporal", "custom")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class SubmissionError(ValueError):
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
    _check_name(sub.agent, "agent")
    _check_name(sub.namespace, "namespace")
    if sub.implementation_spec is None:
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
    if sub.workload_image:
        spec["workload"] = {"image": sub.workload_image}
    if sub.idempotency_key:
        spec["idempotencyKey"] = sub.idempotency_key
    if sub.secrets:
        spec["secrets"] = list(sub.secrets)
    return {"apiVersion": f"{AGENTS}/v1alpha1", "kind": "AgentRun", "metadata": metadata, "spec": spec}
