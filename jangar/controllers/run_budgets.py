"""Budgets for ToolRuns and OrchestrationRuns (issue 10): which Budget they count against, the indexes that
let the Budget controller count ToolRuns, and the mappers that wake a held run when its Budget changes.

Contract (docs/orchestration.md, "Budgets"):

* a ToolRun counts against its `spec.budgetRef`; its Pods' requests x run time are its usage;
* an OrchestrationRun counts against its `spec.budgetRef`, else its Orchestration's
  `spec.policies.budgetRef` (`{name: b}` or `b`). It consumes nothing itself: the Budget is copied into the
  `spec.budgetRef` of every AgentRun, ToolRun and sub-OrchestrationRun it creates, so the children are what
  is counted (never twice) and each child is held on its own before it starts;
* the run is held before it starts (an OrchestrationRun: before its first step; a ToolRun: before its Job)
  with `BudgetExceeded=True`; a Budget change wakes exactly the runs waiting on it, a 60 s requeue is the
  safety net (`BUDGET_RECHECK_SECONDS`).

Budgets are enforced where the Budget controller runs (`supportingController`): without a Budget informer
for the namespace there is no check (`read_budget_check` returns None).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jangar.api.contract import is_terminal
from jangar.api.refs import BUDGETS, ORCHESTRATIONRUNS, ORCHESTRATIONS, TOOLRUNS
from jangar.controllers.budget_hold import BudgetCheck, run_budget
from jangar.controllers.orchestration_indexes import RUN_ORCHESTRATION
from jangar.runtime import CacheReader, InformerNotRegistered, JsonObject, Request
from jangar.runtime.cache import Cache
from jangar.scheduler.budget import budget_name, budget_verdict

__all__ = [
    "ORCHESTRATIONRUN_BUDGET",
    "ORCHESTRATION_BUDGET",
    "TOOLRUN_BUDGET",
    "counted_toolruns",
    "install_run_budget_indexes",
    "orchestrationrun_budget",
    "orchestrationruns_for_budget",
    "policy_budget",
    "read_orchestrationrun_budget",
    "toolruns_for_budget",
]

TOOLRUN_BUDGET = "toolrun-budget"
"""ToolRuns by `<ns>/<spec.budgetRef.name>`."""
ORCHESTRATIONRUN_BUDGET = "orchestrationrun-budget"
"""OrchestrationRuns by `<ns>/<spec.budgetRef.name>` (their own reference)."""
ORCHESTRATION_BUDGET = "orchestration-budget"
"""Orchestrations by `<ns>/<spec.policies.budgetRef>`."""


def _ns(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def policy_budget(orchestration: Mapping[str, Any] | None) -> str | None:
    """The Orchestration's `spec.policies.budgetRef` (`{name: b}` or `b`)."""
    policies = ((orchestration or {}).get("spec") or {}).get("policies")
    ref = policies.get("budgetRef") if isinstance(policies, Mapping) else None
    name = ref.get("name") if isinstance(ref, Mapping) else ref
    return name.strip() if isinstance(name, str) and name.strip() else None


def orchestrationrun_budget(run: Mapping[str, Any], orchestration: Mapping[str, Any] | None) -> str | None:
    """The Budget an OrchestrationRun (and so its children) counts against."""
    return budget_name(run) or policy_budget(orchestration)


def read_orchestrationrun_budget(
    cache: CacheReader, run: Mapping[str, Any], orchestration: Mapping[str, Any] | None
) -> BudgetCheck | None:
    """The check for a run about to start its first step; None without a Budget or where Budgets are not
    enforced."""
    name = orchestrationrun_budget(run, orchestration)
    if name is None:
        return None
    try:
        budget = cache.get(BUDGETS, name, _ns(run), copy=False)
    except InformerNotRegistered:
        return None
    return BudgetCheck(name, budget_verdict(budget, name))


def _orchestration_budget_index(obj: JsonObject) -> list[str]:
    name = policy_budget(obj)
    return [f"{_ns(obj)}/{name}"] if name else []


def install_run_budget_indexes(cache: Cache) -> None:
    """Indexes on ToolRuns, OrchestrationRuns and Orchestrations (the orchestration controller's kinds;
    call only when it is enabled, before the cache starts)."""
    cache.add_index(TOOLRUNS, TOOLRUN_BUDGET, run_budget)
    cache.add_index(ORCHESTRATIONRUNS, ORCHESTRATIONRUN_BUDGET, run_budget)
    cache.add_index(ORCHESTRATIONS, ORCHESTRATION_BUDGET, _orchestration_budget_index)


def counted_toolruns(cache: CacheReader, namespace: str, budget: str) -> list[JsonObject]:
    """The ToolRuns counting against `namespace/budget` (with `kind` set: the ledger records it)."""
    try:
        runs = cache.list(TOOLRUNS, namespace, index=(TOOLRUN_BUDGET, f"{namespace}/{budget}"), copy=False)
    except (InformerNotRegistered, KeyError):
        return []  # ToolRuns are not watched here
    return [{**r, "kind": "ToolRun"} for r in sorted(runs, key=lambda r: str(r["metadata"]["name"]))]


def _requests(objs: Iterable[Mapping[str, Any]]) -> list[Request]:
    return sorted({Request(_ns(o) or None, str((o.get("metadata") or {}).get("name"))) for o in objs})


def toolruns_for_budget(cache: CacheReader) -> Callable[[JsonObject], list[Request]]:
    """Mapper: a Budget → its ToolRuns that have not submitted their Job (only those are held)."""

    def mapper(budget: JsonObject) -> list[Request]:
        ns = _ns(budget)
        key = f"{ns}/{(budget.get('metadata') or {}).get('name')}"
        runs = cache.list(TOOLRUNS, ns, index=(TOOLRUN_BUDGET, key), copy=False)
        return _requests(
            r
            for r in runs
            if not is_terminal((r.get("status") or {}).get("phase"))
            and not ((r.get("status") or {}).get("jobRef") or {}).get("name")
        )

    return mapper


def _not_started(run: Mapping[str, Any]) -> bool:
    status = run.get("status") or {}
    return status.get("phase") in (None, "", "Pending") and not status.get("startedAt")


def orchestrationruns_for_budget(cache: CacheReader) -> Callable[[JsonObject], list[Request]]:
    """Mapper: a Budget → the OrchestrationRuns not started yet that count against it (their own
    `budgetRef`, or their Orchestration's `policies.budgetRef` when they name none)."""

    def mapper(budget: JsonObject) -> list[Request]:
        ns = _ns(budget)
        key = f"{ns}/{(budget.get('metadata') or {}).get('name')}"
        runs = list(cache.list(ORCHESTRATIONRUNS, ns, index=(ORCHESTRATIONRUN_BUDGET, key), copy=False))
        for orch in cache.list(ORCHESTRATIONS, ns, index=(ORCHESTRATION_BUDGET, key), copy=False):
            orch_key = f"{ns}/{orch['metadata']['name']}"
            runs += [
                r
                for r in cache.list(ORCHESTRATIONRUNS, ns, index=(RUN_ORCHESTRATION, orch_key), copy=False)
                if budget_name(r) is None
            ]
        return _requests(r for r in runs if _not_started(r))

    return mapper
