"""Everything one OrchestrationRun decision reads, gathered from the informer cache before deciding.

`decide` is pure: it sees the world through an `OrchestrationRunSnapshot` only. The reader fills it from the
cache: the run's Orchestration, its children (AgentRuns, ToolRuns, OrchestrationRuns) through the
orchestration-run label index, kept only when this run (by uid) controls them, and for each waiting step the
SignalDeliveries it may match (through the signal and deliveryId indexes) and the ApprovalPolicy of a gate.
Nothing is listed by namespace.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jangar.api.contract import approval_delivery_id
from jangar.api.refs import APPROVALPOLICIES, ORCHESTRATIONS, SIGNALDELIVERIES
from jangar.controllers.budget_hold import BudgetCheck
from jangar.controllers.orchestration_indexes import CHILD_KINDS, DELIVERY_ID, DELIVERY_SIGNAL, RUN_CHILDREN
from jangar.controllers.run_budgets import orchestrationrun_budget, read_orchestrationrun_budget
from jangar.runtime import CacheReader, JsonObject, controller_uid
from jangar.scheduler.naming import label_value
from jangar.scheduler.orchestration import orchestration_steps, step_ref
from jangar.settings import ControllerTuning

__all__ = ["OrchestrationRunSnapshot", "read_snapshot", "signal_wait_keys"]


@dataclass(frozen=True)
class OrchestrationRunSnapshot:
    """One OrchestrationRun and what its decision depends on, as of one moment."""

    run: Mapping[str, Any]
    now: datetime
    #: the Orchestration named by `spec.orchestrationRef` (None: not in the cache)
    orchestration: Mapping[str, Any] | None = None
    #: the children this run controls, by (kind, name): AgentRun, ToolRun, OrchestrationRun
    children: Mapping[tuple[str, str], Mapping[str, Any]] = field(default_factory=dict)
    #: ApprovalPolicies named by gate steps (None: missing)
    policies: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)
    #: per step name, the SignalDeliveries it may match (SignalWait) or its decision deliveries (gate)
    deliveries: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    tuning: ControllerTuning = field(default_factory=ControllerTuning)
    #: child names held by objects this run does not control (found when a create collided)
    taken: frozenset[tuple[str, str]] = frozenset()
    #: the Budget the run counts against (its `budgetRef`, else the Orchestration's
    #: `policies.budgetRef`): copied into every child's `spec.budgetRef`
    budget_name: str | None = None
    #: that Budget's verdict, read only before the run starts (None: no Budget, or not enforced here)
    budget: BudgetCheck | None = None

    @property
    def name(self) -> str:
        return str(self.run["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.run["metadata"]["namespace"])


def signal_wait_keys(step: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(signal name, deliveryId) a SignalWait step waits for."""
    delivery = step.get("deliveryId")
    inputs = step.get("with")
    if not (isinstance(delivery, str) and delivery) and isinstance(inputs, Mapping):
        delivery = inputs.get("deliveryId")
    return step_ref(step, "signalRef"), delivery if isinstance(delivery, str) and delivery else None


def _orchestration_name(run: Mapping[str, Any]) -> str | None:
    ref = (run.get("spec") or {}).get("orchestrationRef")
    name = ref.get("name") if isinstance(ref, Mapping) else None
    return name if isinstance(name, str) and name else None


def read_snapshot(
    cache: CacheReader, run: JsonObject, now: datetime, tuning: ControllerTuning | None = None
) -> OrchestrationRunSnapshot:
    meta = run["metadata"]
    ns, name, uid = str(meta["namespace"]), str(meta["name"]), str(meta.get("uid") or "")
    orch_name = _orchestration_name(run)
    orchestration = cache.get(ORCHESTRATIONS, orch_name, ns, copy=False) if orch_name else None
    children: dict[tuple[str, str], Mapping[str, Any]] = {}
    if uid:
        for ref in CHILD_KINDS:
            for child in cache.list(ref, ns, index=(RUN_CHILDREN, label_value(name)), copy=False):
                if controller_uid(child) == uid:
                    children[(ref.kind, str(child["metadata"]["name"]))] = child
    policies: dict[str, Mapping[str, Any] | None] = {}
    deliveries: dict[str, list[Mapping[str, Any]]] = {}
    for step in orchestration_steps((orchestration or {}).get("spec")):
        step_name = str(step.get("name") or "")
        if step.get("kind") == "ApprovalGate":
            policy = step_ref(step, "policyRef")
            if policy and policy not in policies:
                policies[policy] = cache.get(APPROVALPOLICIES, policy, ns, copy=False)
            key = f"{ns}/{approval_delivery_id(name, step_name)}"
            deliveries[step_name] = list(
                cache.list(SIGNALDELIVERIES, ns, index=(DELIVERY_ID, key), copy=False)
            )
        elif step.get("kind") == "SignalWait":
            signal, delivery = signal_wait_keys(step)
            found: dict[str, Mapping[str, Any]] = {}
            if signal:
                for d in cache.list(
                    SIGNALDELIVERIES, ns, index=(DELIVERY_SIGNAL, f"{ns}/{signal}"), copy=False
                ):
                    found[str(d["metadata"]["name"])] = d
            if delivery:
                for d in cache.list(
                    SIGNALDELIVERIES, ns, index=(DELIVERY_ID, f"{ns}/{delivery}"), copy=False
                ):
                    found[str(d["metadata"]["name"])] = d
            deliveries[step_name] = [found[k] for k in sorted(found)]
    status = run.get("status") or {}
    started = bool(status.get("startedAt")) or status.get("phase") not in (None, "", "Pending")
    budget = None if started else read_orchestrationrun_budget(cache, run, orchestration)
    return OrchestrationRunSnapshot(
        budget_name=orchestrationrun_budget(run, orchestration),
        budget=budget,
        run=run,
        now=now,
        orchestration=orchestration,
        children=children,
        policies=policies,
        deliveries=deliveries,
        tuning=tuning or ControllerTuning(),
    )
