"""Agent: its provider (and memory and VCS provider, when named) must exist.

Woken by events on the objects it names (indexes), so an Agent that was created before its provider turns
Ready as soon as the provider appears, and an Agent whose provider is deleted stops being Ready.
"""

from __future__ import annotations

from jangar.controllers.kinds import AGENTPROVIDERS, MEMORIES, VCSPROVIDERS
from jangar.controllers.supporting import CheckEnv, Verdict, invalid, ready
from jangar.runtime import JsonObject

__all__ = ["check_agent"]


def _name(value: object) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("name"), str) and value["name"].strip():
        return str(value["name"]).strip()
    return None


async def check_agent(obj: JsonObject, env: CheckEnv) -> Verdict:
    ns = obj["metadata"]["namespace"]
    spec = obj.get("spec") or {}
    provider = _name(spec.get("providerRef"))
    if provider is None:
        return invalid("MissingProviderRef", "spec.providerRef.name is required")
    if env.cache.get(AGENTPROVIDERS, provider, ns, copy=False) is None:
        return invalid("MissingProvider", f"agent provider {provider!r} not found in namespace {ns!r}")
    memory = _name(spec.get("memoryRef"))
    if memory is not None and env.cache.get(MEMORIES, memory, ns, copy=False) is None:
        return invalid("MissingMemory", f"memory {memory!r} (spec.memoryRef) not found in namespace {ns!r}")
    vcs = _name(spec.get("vcsRef"))
    if vcs is not None and env.cache.get(VCSPROVIDERS, vcs, ns, copy=False) is None:
        return invalid("MissingVcsProvider", f"version control provider {vcs!r} (spec.vcsRef) not found")
    return ready("ValidSpec", f"provider {provider} found")
