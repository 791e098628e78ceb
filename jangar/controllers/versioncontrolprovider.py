"""VersionControlProvider: provider, auth method, token type and auth material (reference §5.1).

The rules live in `jangar.vcs.check_provider`; this reads the Secrets and ConfigMap the provider names (key
names only, on demand — Secrets are not cached) and maps the result onto the supporting status loop.
Missing objects are re-checked on a timer; `lastValidatedAt` is not stamped on every pass (§12.5).
"""

from __future__ import annotations

from collections.abc import Callable

from jangar.controllers.credentials import KeyNames, read_provider_keys
from jangar.controllers.status import Cond
from jangar.controllers.supporting import UNREACHABLE_REQUEUE_SECONDS, CheckEnv, Verdict
from jangar.runtime import JsonObject
from jangar.vcs import check_provider

__all__ = ["check_vcs_provider"]


async def check_vcs_provider(obj: JsonObject, env: CheckEnv) -> Verdict:
    ns = obj["metadata"]["namespace"]
    secrets, configmaps = await read_provider_keys(env.client, ns, obj)

    def lookup(found: KeyNames) -> Callable[[str, str], bool | None]:
        def has(name: str, key: str) -> bool | None:
            keys = found.get(name)
            return None if keys is None else key in keys

        return has

    check = check_provider(obj, env.settings, secret_key=lookup(secrets), configmap_key=lookup(configmaps))
    ready, ready_reason, ready_message = check.conditions["Ready"]
    invalid = check.conditions["InvalidSpec"]
    unreachable = check.conditions["Unreachable"]
    warning = check.conditions["Warning"]
    reason = (
        ready_reason
        if ready
        else (invalid[1] if invalid[0] else unreachable[1] if unreachable[0] else ready_reason)
    )
    retry = not ready and (unreachable[0] or reason in ("SecretKeyMissing", "ConfigMapKeyMissing"))
    return Verdict(
        ready,
        reason,
        ready_message,
        invalid=invalid[0],
        unreachable=unreachable[0],
        conditions=(Cond("Warning", warning[0], warning[1], warning[2]),),
        requeue_after=UNREACHABLE_REQUEUE_SECONDS if retry else None,
    )
