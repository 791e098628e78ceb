"""`Agent.spec.security.allowedImplementationSourceProviders` (0.9.29 row 33) on the webhook path.

An Agent may restrict which ImplementationSource providers (github, linear, ...) can start its runs
from a webhook delivery. Unset or empty allows every provider (0.9.1 behaviour). A refused delivery is
not retried: its ImplementationSpec is still synced, but no AgentRun is created, and the source's status
says why (`ImplementationSourceProviderNotAllowed`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jangar.api.shape import as_map

__all__ = ["ProviderNotAllowed", "provider_refusal"]

REASON = "ImplementationSourceProviderNotAllowed"


class ProviderNotAllowed(Exception):
    """The run template's Agent does not accept runs from this provider (not retried)."""


def provider_refusal(agent: Mapping[str, Any] | None, provider: str) -> str | None:
    """Why `agent` refuses a run from `provider`'s webhook, or None when it accepts it."""
    security = as_map(as_map(as_map(agent).get("spec")).get("security"))
    allowed = [p for p in security.get("allowedImplementationSourceProviders") or () if isinstance(p, str)]
    if not allowed or provider in allowed:
        return None
    name = as_map(as_map(agent).get("metadata")).get("name")
    return (
        f"Agent {name!r} allows runs from ImplementationSource providers {sorted(allowed)} "
        f"(spec.security.allowedImplementationSourceProviders), not {provider!r}"
    )
