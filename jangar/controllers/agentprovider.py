"""AgentProvider: it needs a binary (the runner executes it); templates are rendered per run.

Chart 0.9.29 fields (docs/providers.md): `spec.workload` (image, resources, serviceAccountName, projected
serviceAccountToken), `spec.secretEnv[]`, `spec.adapter` and `spec.health.capacityFailurePolicy`. Besides
validating them, each pass computes the provider's health from its finished runs
(`jangar.scheduler.provider_health`) into `status.health`: phase `Ready`, `Degraded` (capacity, policy
`degrade`: still Ready) or `Blocked` (auth, or capacity under policy `block`: Ready=False). The AgentRun
decision holds new runs of an unhealthy provider (`provider_hold`).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from datetime import datetime
from typing import Any

from jangar.api.shape import as_list, as_map
from jangar.controllers.provider_health import provider_outcomes
from jangar.controllers.status import Cond
from jangar.controllers.supporting import CheckEnv, CheckFunc, Verdict, invalid, ready
from jangar.runtime import JsonObject
from jangar.scheduler.provider_health import ProviderHealth, provider_health
from jangar.scheduler.provider_workload import KNOWN_ADAPTERS, adapter_of
from jangar.scheduler.runspec import WORKSPACE

__all__ = ["health_verdict", "make_check_agent_provider", "spec_problem"]

#: a provider unhealthy for longer looks again at least this often (a run's success may be missed otherwise)
_HEALTH_RECHECK_SECONDS = 60.0


def spec_problem(spec: Any) -> tuple[str, str] | None:
    """(reason, message) of the first invalid field, or None."""
    spec = as_map(spec)
    binary = spec.get("binary")
    if not isinstance(binary, str) or not binary.strip():
        return "MissingBinary", "spec.binary is required (the executable the runner starts)"
    for i, entry in enumerate(as_list(spec.get("inputFiles"))):
        if not isinstance(entry, dict) or not entry.get("path"):
            return "InvalidInputFile", f"spec.inputFiles[{i}] needs a path"
    token = as_map(as_map(spec.get("workload")).get("serviceAccountToken"))
    path = token.get("path")
    if token and isinstance(path, str):
        parent = posixpath.dirname(posixpath.normpath(path))
        if not path.startswith("/") or path.endswith("/") or parent in ("/", WORKSPACE):
            return "InvalidServiceAccountToken", (
                f"spec.workload.serviceAccountToken.path {path!r} must be an absolute file path in a "
                f"directory of its own (not / or {WORKSPACE}), e.g. /var/run/secrets/agents/token"
            )
    expiry = token.get("expirationSeconds")
    if expiry is not None and (not isinstance(expiry, int) or isinstance(expiry, bool) or expiry < 600):
        return "InvalidServiceAccountToken", (
            f"spec.workload.serviceAccountToken.expirationSeconds {expiry!r} is below Kubernetes' minimum of "
            "600; set 600 or more, or leave it out for the default (1 hour)"
        )
    names = [as_map(e).get("name") for e in as_list(spec.get("secretEnv"))]
    duplicates = sorted({str(n) for n in names if names.count(n) > 1})
    if duplicates:
        return "DuplicateSecretEnv", f"spec.secretEnv names {', '.join(duplicates)} more than once"
    return None


def _adapter_warning(obj: JsonObject) -> Cond:
    adapter = adapter_of(obj)
    if adapter is None or adapter in KNOWN_ADAPTERS:
        return Cond("Warning", False, "None")
    return Cond(
        "Warning",
        True,
        "UnknownAdapter",
        f"spec.adapter {adapter!r} is not one jangar knows ({', '.join(sorted(KNOWN_ADAPTERS))}); it is "
        "passed to the binary as AGENT_PROVIDER_ADAPTER unchanged",
    )


def health_verdict(obj: JsonObject, health: ProviderHealth, now: datetime, binary: str) -> Verdict:
    """The provider's verdict for a valid spec and its health."""
    conditions = (_adapter_warning(obj),)
    fields = {"health": health.status()}
    if health.healthy:
        recovered = as_map(as_map(obj.get("status")).get("health")).get("state") not in (None, "Healthy")
        event = (
            ("Normal", "ProviderRecovered", health.message or "provider is healthy") if recovered else None
        )
        return ready("ValidSpec", f"binary {binary}", conditions=conditions, fields=fields, event=event)
    assert health.until is not None
    left = max(1.0, min((health.until - now).total_seconds(), _HEALTH_RECHECK_SECONDS))
    degraded = Cond("Degraded", True, health.reason, health.message)
    return Verdict(
        health.ready,
        health.reason,
        health.message,
        phase="Degraded" if health.ready else "Blocked",
        conditions=conditions,
        fields=fields,
        requeue_after=left,
        overrides=(degraded,),
        event=("Warning", health.reason, health.message),
    )


def make_check_agent_provider(clock: Callable[[], datetime]) -> CheckFunc:
    """The AgentProvider check with `clock` (the health cool-down is judged at `clock()`)."""

    async def check(obj: JsonObject, env: CheckEnv) -> Verdict:
        spec = as_map(obj.get("spec"))
        problem = spec_problem(spec)
        if problem is not None:
            return invalid(*problem)
        now = clock()
        health = provider_health(
            obj,
            provider_outcomes(env.cache, obj),
            now=now,
            cooldown_seconds=env.settings.tuning.provider_health_cooldown_seconds,
        )
        return health_verdict(obj, health, now, str(spec.get("binary")))

    return check
