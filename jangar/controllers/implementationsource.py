"""ImplementationSource: a supported provider, a webhook secret that exists and has its key (§3.10), and a
webhook endpoint actually served by this process (`WebhookReady` only then; else `WebhookNotServed`).

The Secret is read directly (not cached: the controller should not hold every Secret of the namespace in
memory), so a missing one is re-checked on a timer rather than on a Secret event.
"""

from __future__ import annotations

from jangar.api.shape import as_map
from jangar.controllers.supporting import CheckEnv, CheckFunc, Verdict, invalid, read_secret_key, ready
from jangar.runtime import JsonObject

__all__ = ["check_implementation_source", "make_check_implementation_source"]

SUPPORTED = ("github", "linear")


def make_check_implementation_source(webhooks_served: bool) -> CheckFunc:
    """The check for a process that does (or does not) serve the webhook route."""

    async def check(obj: JsonObject, env: CheckEnv) -> Verdict:
        verdict = await check_implementation_source(obj, env)
        if verdict.ready and not webhooks_served:
            return Verdict(
                False,
                "WebhookNotServed",
                "the webhook endpoint is not served by this jangar process (its HTTP server is disabled)",
                phase="NotReady",
            )
        return verdict

    return check


async def check_implementation_source(obj: JsonObject, env: CheckEnv) -> Verdict:
    """The spec and secret checks alone (`make_check_implementation_source` adds the endpoint)."""
    ns = obj["metadata"]["namespace"]
    spec = obj.get("spec") or {}
    provider = spec.get("provider")
    if not provider:
        return invalid("MissingProvider", "spec.provider is required (github or linear)")
    if provider not in SUPPORTED:
        return invalid("UnsupportedProvider", f"provider {provider!r} is not supported; use github or linear")
    secret_ref = as_map(as_map(spec.get("auth")).get("secretRef"))
    if not secret_ref.get("name"):
        return invalid("MissingSecretRef", "spec.auth.secretRef.name is required")
    if not as_map(spec.get("webhook")).get("enabled"):
        return Verdict(False, "WebhookDisabled", "spec.webhook.enabled is not true", phase="Disabled")
    problem = await read_secret_key(
        env.client, ns, str(secret_ref["name"]), str(secret_ref.get("key") or "token")
    )
    if problem is not None:
        return problem
    return ready("WebhookReady", f"accepting {provider} webhooks")
