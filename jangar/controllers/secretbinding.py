"""SecretBinding: subjects and allowed secrets must both be non-empty (§5.4).

The AgentRun reconciler enforces bindings for every secret a run reads (`jangar.validation.secrets`); this
only reports whether a binding is usable.
"""

from __future__ import annotations

from jangar.api.shape import as_list
from jangar.controllers.supporting import CheckEnv, Verdict, invalid, ready
from jangar.runtime import JsonObject

__all__ = ["check_secret_binding"]


async def check_secret_binding(obj: JsonObject, env: CheckEnv) -> Verdict:
    spec = obj.get("spec") or {}
    subjects = as_list(spec.get("subjects"))
    secrets = as_list(spec.get("allowedSecrets"))
    if not subjects:
        return invalid("InvalidSpec", "spec.subjects needs at least one subject (kind and name)")
    if not secrets:
        return invalid("InvalidSpec", "spec.allowedSecrets needs at least one secret name")
    for i, subject in enumerate(subjects):
        if not isinstance(subject, dict) or not subject.get("kind") or not subject.get("name"):
            return invalid("InvalidSpec", f"spec.subjects[{i}] needs kind and name")
    return ready("Ready", f"{len(secrets)} secret(s) for {len(subjects)} subject(s)")
