"""ImplementationSource: a supported provider, a webhook secret that exists and has its key (§3.10).

The Secret is read directly (not cached: the controller should not hold every Secret of the namespace in
memory), so a missing one is re-checked on a timer rather than on a Secret event.
"""

from __future__ import annotations

from jangar.controllers.supporting import CheckEnv, Verdict, invalid, read_secret_key, ready
from jangar.runtime import JsonObject

__all__ = ["check_implementation_source"]

SUPPORTED = ("github", "linear")


async def check_implementation_source(obj: JsonObject, env: CheckEnv) -> Verdict:
    ns = obj["metadata"]["namespace"]
    spec = obj.get("spec") or {}
    provider = spec.get("provider")
    if not provider:
        return invalid("MissingProvider", "spec.provider is required (github or linear)")
    if provider not in SUPPORTED:
        return invalid("UnsupportedProvider", f"provider {provider!r} is not supported; use github or linear")
    secret_ref = (spec.get("auth") or {}).get("secretRef") or {}
    if not secret_ref.get("name"):
        return invalid("MissingSecretRef", "spec.auth.secretRef.name is required")
    if not (spec.get("webhook") or {}).get("enabled"):
        return Verdict(False, "WebhookDisabled", "spec.webhook.enabled is not true", phase="Disabled")
    problem = await read_secret_key(
        env.client, ns, str(secret_ref["name"]), str(secret_ref.get("key") or "token")
    )
    if problem is not None:
        return problem
    return ready("WebhookReady", f"accepting {provider} webhooks")
