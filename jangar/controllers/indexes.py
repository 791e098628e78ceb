"""Cache indexes and event mappers: a change to a referenced object wakes only its dependents.

The reference reconciled the whole namespace on any Agent/Provider/Spec/Memory/VCS event (§2.4). Here each
AgentRun and Agent is indexed by what it references (`<namespace>/<name>` values), so an AgentProvider event
maps to the Agents using it and to the not-yet-submitted runs of those Agents, and nothing else. Runs that
already have a Job are not re-validated (changing an Agent must not fail a running run, reference §12.18).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jangar.api.contract import is_terminal
from jangar.controllers.kinds import AGENTRUNS, AGENTS
from jangar.runtime import CacheReader, JsonObject, Request
from jangar.runtime.cache import Cache
from jangar.runtime.store import IndexFunc

__all__ = [
    "AGENT_MEMORY",
    "AGENT_PROVIDER",
    "AGENT_VCS",
    "RUN_AGENT",
    "RUN_IMPLEMENTATION",
    "RUN_MEMORY",
    "RUN_UNSUBMITTED",
    "RUN_VCS",
    "agents_for",
    "install_indexes",
    "is_unsubmitted",
    "runs_for",
]

RUN_AGENT = "agentrun-agent"
RUN_IMPLEMENTATION = "agentrun-implementation"
RUN_MEMORY = "agentrun-memory"
RUN_VCS = "agentrun-vcs"
RUN_UNSUBMITTED = "agentrun-unsubmitted"
AGENT_PROVIDER = "agent-provider"
AGENT_MEMORY = "agent-memory"
AGENT_VCS = "agent-vcs"


def _ns(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def _ref(value: Any) -> str | None:
    if isinstance(value, Mapping) and isinstance(value.get("name"), str) and value["name"].strip():
        return str(value["name"]).strip()
    return None


def _keyed(obj: Mapping[str, Any], names: Iterable[str | None]) -> list[str]:
    ns = _ns(obj)
    return sorted({f"{ns}/{n}" for n in names if n})


def is_unsubmitted(run: Mapping[str, Any]) -> bool:
    """Not finished and without a Job yet: the runs whose validation depends on other objects."""
    status = run.get("status") or {}
    return not is_terminal(status.get("phase")) and not (status.get("jobRef") or {}).get("name")


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def run_agent(run: JsonObject) -> list[str]:
    return _keyed(run, [_ref(_spec(run).get("agentRef"))])


def run_implementation(run: JsonObject) -> list[str]:
    spec = _spec(run)
    steps = ((spec.get("workflow") or {}).get("steps")) or []
    names = [_ref(spec.get("implementationSpecRef"))]
    names += [_ref(s.get("implementationSpecRef")) for s in steps if isinstance(s, Mapping)]
    return _keyed(run, names)


def run_memory(run: JsonObject) -> list[str]:
    return _keyed(run, [_ref(_spec(run).get("memoryRef"))])


def run_vcs(run: JsonObject) -> list[str]:
    return _keyed(run, [_ref(_spec(run).get("vcsRef"))])


def run_unsubmitted(run: JsonObject) -> list[str]:
    return [_ns(run)] if is_unsubmitted(run) else []


def agent_provider(agent: JsonObject) -> list[str]:
    return _keyed(agent, [_ref(_spec(agent).get("providerRef"))])


def agent_memory(agent: JsonObject) -> list[str]:
    return _keyed(agent, [_ref(_spec(agent).get("memoryRef"))])


def agent_vcs(agent: JsonObject) -> list[str]:
    return _keyed(agent, [_ref(_spec(agent).get("vcsRef"))])


def install_indexes(cache: Cache) -> None:
    """Add the indexes (once per cache)."""
    run_indexes: tuple[tuple[str, IndexFunc], ...] = (
        (RUN_AGENT, run_agent),
        (RUN_IMPLEMENTATION, run_implementation),
        (RUN_MEMORY, run_memory),
        (RUN_VCS, run_vcs),
        (RUN_UNSUBMITTED, run_unsubmitted),
    )
    agent_indexes: tuple[tuple[str, IndexFunc], ...] = (
        (AGENT_PROVIDER, agent_provider),
        (AGENT_MEMORY, agent_memory),
        (AGENT_VCS, agent_vcs),
    )
    for name, func in run_indexes:
        cache.add_index(AGENTRUNS, name, func)
    for name, func in agent_indexes:
        cache.add_index(AGENTS, name, func)


def _requests(objs: Iterable[Mapping[str, Any]]) -> list[Request]:
    out = {Request(_ns(o) or None, str((o.get("metadata") or {}).get("name"))) for o in objs}
    return sorted(out)


def agents_for(cache: CacheReader, index: str) -> Callable[[JsonObject], list[Request]]:
    """Mapper: an object → the Agents whose `index` points at it."""

    def mapper(obj: JsonObject) -> list[Request]:
        key = f"{_ns(obj)}/{(obj.get('metadata') or {}).get('name')}"
        return _requests(cache.list(AGENTS, _ns(obj), index=(index, key), copy=False))

    return mapper


def runs_for(
    cache: CacheReader,
    run_index: str | None,
    agent_index: str | None = None,
    *,
    unsubmitted_if: Callable[[JsonObject], bool] | None = None,
) -> Callable[[JsonObject], list[Request]]:
    """Mapper: an object → the unsubmitted AgentRuns referencing it directly (`run_index`), through their
    Agent (`agent_index`), or — when `unsubmitted_if(obj)` holds (a default Memory, a SecretBinding) — every
    unsubmitted run of the namespace."""

    def mapper(obj: JsonObject) -> list[Request]:
        ns = _ns(obj)
        key = f"{ns}/{(obj.get('metadata') or {}).get('name')}"
        runs: list[Mapping[str, Any]] = []
        if run_index is not None:
            runs += cache.list(AGENTRUNS, ns, index=(run_index, key), copy=False)
        if agent_index is not None:
            for agent in cache.list(AGENTS, ns, index=(agent_index, key), copy=False):
                agent_key = f"{ns}/{agent['metadata']['name']}"
                runs += cache.list(AGENTRUNS, ns, index=(RUN_AGENT, agent_key), copy=False)
        if unsubmitted_if is not None and unsubmitted_if(obj):
            runs += cache.list(AGENTRUNS, ns, index=(RUN_UNSUBMITTED, ns), copy=False)
        return _requests(r for r in runs if is_unsubmitted(r))

    return mapper
