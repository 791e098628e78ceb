"""The cache side of provider health gating (the rules are in `jangar.scheduler.provider_health`).

* `provider_outcomes`: the finished runs of a provider (through the Agents whose `providerRef` names it),
  read from the informer cache by index, no namespace scan.
* `provider_of_finished_run` + `RunFinished`: a run that just finished wakes its provider's reconcile.
* `HealthChanged`: a provider whose `status.health` changed wakes the runs waiting to start (the AgentRun
  controller watches AgentProviders for spec changes only otherwise).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from jangar.api.contract import is_terminal
from jangar.api.shape import as_map
from jangar.controllers import indexes as ix
from jangar.controllers.kinds import AGENTRUNS, AGENTS
from jangar.runtime import CacheReader, JsonObject, Request
from jangar.scheduler.provider_health import RunOutcome, run_outcome

__all__ = ["HealthChanged", "RunFinished", "provider_of_finished_run", "provider_outcomes"]


def _ns(obj: Mapping[str, Any]) -> str:
    return str(as_map(obj.get("metadata")).get("namespace") or "")


def provider_outcomes(cache: CacheReader, provider: Mapping[str, Any]) -> list[RunOutcome]:
    """The provider's finished runs (Succeeded or Failed, with a finish time)."""
    ns = _ns(provider)
    key = f"{ns}/{as_map(provider.get('metadata')).get('name')}"
    outcomes: list[RunOutcome] = []
    for agent in cache.list(AGENTS, ns, index=(ix.AGENT_PROVIDER, key), copy=False):
        agent_key = f"{ns}/{agent['metadata']['name']}"
        for run in cache.list(AGENTRUNS, ns, index=(ix.RUN_AGENT, agent_key), copy=False):
            outcome = run_outcome(run)
            if outcome is not None:
                outcomes.append(outcome)
    return outcomes


def provider_of_finished_run(cache: CacheReader) -> Callable[[JsonObject], list[Request]]:
    """Mapper: a finished AgentRun → its Agent's AgentProvider."""

    def mapper(run: JsonObject) -> list[Request]:
        if not is_terminal(as_map(run.get("status")).get("phase")):
            return []
        ns = _ns(run)
        agent_name = as_map(as_map(run.get("spec")).get("agentRef")).get("name")
        agent = cache.get(AGENTS, str(agent_name), ns, copy=False) if agent_name else None
        provider = as_map(as_map((agent or {}).get("spec")).get("providerRef")).get("name")
        return [Request(ns or None, str(provider))] if provider else []

    return mapper


def _phase(obj: JsonObject) -> Any:
    return as_map(obj.get("status")).get("phase")


class RunFinished:
    """Passes a run that is finished when created (start-up sync) or whose phase just became terminal."""

    def create(self, obj: JsonObject) -> bool:
        return is_terminal(_phase(obj))

    def update(self, old: JsonObject, new: JsonObject) -> bool:
        return _phase(old) != _phase(new) and is_terminal(_phase(new))

    def delete(self, obj: JsonObject) -> bool:
        return False


class HealthChanged:
    """Passes a provider update whose `status.health` state or generation changed."""

    def create(self, obj: JsonObject) -> bool:
        return True

    def update(self, old: JsonObject, new: JsonObject) -> bool:
        def key(obj: JsonObject) -> tuple[Any, Any, Any]:
            health = as_map(as_map(obj.get("status")).get("health"))
            return health.get("state"), health.get("generation"), health.get("until")

        return key(old) != key(new)

    def delete(self, obj: JsonObject) -> bool:
        return True
