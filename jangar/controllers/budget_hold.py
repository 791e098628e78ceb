"""Which Budget an AgentRun counts against, and the hold on a run whose Budget is exceeded.

Contract (docs/orchestration.md, "Budgets"): a run counts against `spec.budgetRef`, else its Agent's
`spec.budgetRef` (same namespace). Children of an OrchestrationRun name the Orchestration's
`spec.policies.budgetRef` in their own `spec.budgetRef`. Before a run starts (no Job yet) the AgentRun
decision reads `BudgetCheck` from its snapshot: an exceeded (or unreadable) Budget holds it `Pending` with
`BudgetExceeded=True` until the Budget allows it; a Budget that does not exist is a missing reference
(`MissingBudget`, held for the reference grace like a missing Agent, then failed).

Budgets are enforced where the Budget controller runs (`supportingController`): without a Budget informer
for the run's namespace there is no check (nothing would keep `status.used` current).

The indexes here let the Budget controller find the runs that count against a Budget, and let a Budget
change wake exactly the runs waiting on it (`jangar.controllers.indexes.runs_for`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jangar.api.refs import BUDGETS
from jangar.conditions import ConditionStatus
from jangar.controllers.kinds import AGENTRUNS, AGENTS
from jangar.runtime import CacheReader, InformerNotRegistered, JsonObject
from jangar.runtime.cache import Cache
from jangar.scheduler.budget import BudgetVerdict, budget_name, budget_verdict

__all__ = [
    "AGENT_BUDGET",
    "BUDGET_RECHECK_SECONDS",
    "RUN_BUDGET",
    "BudgetCheck",
    "agent_budget",
    "install_budget_indexes",
    "read_budget_check",
    "run_budget",
]

RUN_BUDGET = "agentrun-budget"
AGENT_BUDGET = "agent-budget"
BUDGET_RECHECK_SECONDS = 60.0
"""A held run looks again this often (a Budget change wakes it at once; this is the safety net)."""


def _ns(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def run_budget(run: JsonObject) -> list[str]:
    """Index: `<ns>/<budget>` of the run's own `spec.budgetRef`."""
    name = budget_name(run)
    return [f"{_ns(run)}/{name}"] if name else []


def agent_budget(agent: JsonObject) -> list[str]:
    """Index: `<ns>/<budget>` of the Agent's `spec.budgetRef`."""
    name = budget_name(agent)
    return [f"{_ns(agent)}/{name}"] if name else []


def install_budget_indexes(cache: Cache) -> None:
    cache.add_index(AGENTRUNS, RUN_BUDGET, run_budget)
    cache.add_index(AGENTS, AGENT_BUDGET, agent_budget)


@dataclass(frozen=True)
class BudgetCheck:
    """The Budget a run counts against and its verdict, as of the snapshot."""

    name: str
    verdict: BudgetVerdict

    @property
    def holds(self) -> bool:
        return self.verdict.exceeded

    @property
    def condition(self) -> tuple[ConditionStatus, str, str]:
        """The run's `BudgetExceeded` condition (Unknown while the Budget does not exist)."""
        v = self.verdict
        if not v.found:
            return "Unknown", v.reason, v.message
        if v.exceeded:
            return "True", v.reason, f"{v.message}; the run starts once the budget allows it"
        return "False", v.reason, v.message


def effective_budget(cache: CacheReader, run: Mapping[str, Any]) -> str | None:
    """The Budget `run` counts against: its own reference, else its Agent's (from the cache)."""
    own = budget_name(run)
    if own:
        return own
    agent_ref = (run.get("spec") or {}).get("agentRef") or {}
    agent_name = agent_ref.get("name") if isinstance(agent_ref, Mapping) else None
    if not isinstance(agent_name, str) or not agent_name:
        return None
    try:
        agent = cache.get(AGENTS, agent_name, _ns(run), copy=False)
    except InformerNotRegistered:
        return None
    return budget_name(run, agent)


def read_budget_check(cache: CacheReader, run: Mapping[str, Any]) -> BudgetCheck | None:
    """The check for a run about to start; None when it counts against no Budget, or when Budgets are
    not watched in its namespace."""
    name = effective_budget(cache, run)
    if name is None:
        return None
    try:
        budget = cache.get(BUDGETS, name, _ns(run), copy=False)
    except InformerNotRegistered:
        return None
    return BudgetCheck(name, budget_verdict(budget, name))
