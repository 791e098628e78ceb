"""Who may use a secret: the controller's block list, the Agent's allow list and SecretBindings.

A secret reaches a run only when a SecretBinding in the run's namespace lists it and names the run's Agent
(or the AgentRun itself) as a subject. The reference enforced bindings only in its REST handlers, so a run
applied with kubectl bypassed them (§5.4); here the controller checks them for every secret a run would
read: `spec.secrets`, workload secret volumes, the memory secret and VCS credentials. The controller's own
auth secret (JANGAR_AGENTS_CONTROLLER_AUTH_SECRET_NAME) is configured by the operator and needs no binding,
but still honours the block list and the Agent's allow list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from jangar.api.shape import allow_list, as_list, as_map
from jangar.settings import Settings
from jangar.validation.problems import Problem

__all__ = ["binding_allows", "secret_problem"]


def _subject_matches(subject: Mapping[str, Any], kind: str, name: str, namespace: str | None) -> bool:
    if not isinstance(subject, Mapping):
        return False
    if subject.get("kind") != kind or subject.get("name") != name:
        return False
    subject_ns = subject.get("namespace")
    return not (subject_ns and namespace and subject_ns != namespace)


def binding_allows(
    bindings: Iterable[Mapping[str, Any]],
    secret: str,
    subjects: Iterable[tuple[str, str]],
    namespace: str | None,
) -> bool:
    """True when some binding lists `secret` and one of `subjects` ((kind, name) pairs)."""
    wanted = list(subjects)
    for binding in bindings:
        spec = as_map(binding.get("spec"))
        if secret not in as_list(spec.get("allowedSecrets")):
            continue
        for subject in spec.get("subjects") or ():
            if any(_subject_matches(subject, kind, name, namespace) for kind, name in wanted):
                return True
    return False


def secret_problem(
    secret: str,
    *,
    purpose: str,
    agent: Mapping[str, Any] | None,
    run: Mapping[str, Any],
    bindings: Iterable[Mapping[str, Any]],
    settings: Settings,
    needs_binding: bool = True,
) -> Problem | None:
    """The first policy a secret breaks, or `None`. `purpose` says where the run uses it ("spec.secrets")."""
    if secret in settings.admission_policy.blocked_secrets:
        return Problem(
            "SecretBlocked",
            f"secret {secret!r} ({purpose}) is blocked by the controller (controller.admissionPolicy.secrets.blocked)",
        )
    agent_spec = (agent or {}).get("spec") or {}
    allowed = allow_list(as_map(agent_spec.get("security")).get("allowedSecrets"))
    agent_name = str(((agent or {}).get("metadata") or {}).get("name") or "")
    if allowed is not None and secret not in allowed:
        return Problem(
            "SecretNotAllowed",
            f"secret {secret!r} ({purpose}) is not in agent {agent_name!r} spec.security.allowedSecrets",
        )
    if needs_binding:
        metadata = run.get("metadata") or {}
        namespace = metadata.get("namespace")
        subjects = [("Agent", agent_name), ("AgentRun", str(metadata.get("name") or ""))]
        if not binding_allows(bindings, secret, subjects, namespace):
            return Problem(
                "SecretNotBound",
                f"secret {secret!r} ({purpose}) is not allowed by any SecretBinding in namespace {namespace!r} "
                f"for agent {agent_name!r}; create a SecretBinding listing it in spec.allowedSecrets with the "
                "agent as a subject",
            )
    return None
