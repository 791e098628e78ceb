"""Wiring of the ApprovalPolicy, Signal, SignalDelivery and Budget controllers (issue 10, resource side).

They run behind `supportingController.enabled` (`JANGAR_SUPPORTING_CONTROLLER_ENABLED`) and watch its
namespaces (`JANGAR_SUPPORTING_CONTROLLER_NAMESPACES`, which default to the agents controller's). `setup.install`
calls, in this order:

* `scope_supporting_cache` before any informer exists (the kinds' namespaces);
* `watch_budgets(agentrun_controller, ...)`: a Budget change wakes the runs waiting on it;
* `install_supporting_kinds`: informers, indexes and the four controllers.

| Controller | Reconciles | Also woken by |
|---|---|---|
| `approvalpolicy` | ApprovalPolicy (generation) | its decision SignalDeliveries |
| `signal` | Signal (generation) | its SignalDeliveries |
| `signaldelivery` | SignalDelivery (generation) | its Signal or ApprovalPolicy appearing |
| `budget` | Budget (generation) | its AgentRuns (any change), Agents naming it; a timer while usage moves |
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime

from jangar.api.refs import APPROVALPOLICIES, BUDGETS, SIGNALDELIVERIES, SIGNALS, TOOLRUNS
from jangar.controllers import indexes as ix
from jangar.controllers.budget import BudgetReconciler, budget_of_run, budgets_of_agent
from jangar.controllers.budget_hold import AGENT_BUDGET, RUN_BUDGET, install_budget_indexes
from jangar.controllers.kinds import AGENTRUNS, AGENTS
from jangar.controllers.signals import (
    APPROVAL_POLICY,
    SIGNAL,
    check_approval_policy,
    check_signal,
    install_signal_indexes,
    make_check_signal_delivery,
    target_of_delivery,
    undelivered_for,
)
from jangar.controllers.supporting import CheckEnv, SupportingReconciler
from jangar.runtime import Builder, Controller, GenerationChanged, Manager, Recorder, ResourceCacheOptions
from jangar.settings import Settings

__all__ = ["SUPPORTING_KINDS", "install_supporting_kinds", "scope_supporting_cache", "watch_budgets"]

SUPPORTING_KINDS = (APPROVALPOLICIES, SIGNALS, SIGNALDELIVERIES, BUDGETS)


def scope_supporting_cache(manager: Manager, settings: Settings) -> None:
    """The supporting kinds are cached in the supporting controller's namespaces."""
    sc = settings.supporting_controller
    namespaces = None if sc.all_namespaces else list(sc.namespaces)
    options = manager.cache.options
    by_resource = dict(options.by_resource)
    for ref in SUPPORTING_KINDS:
        by_resource.setdefault(ref, ResourceCacheOptions(namespaces=namespaces))
    manager.cache.options = dataclasses.replace(options, by_resource=by_resource)


def watch_budgets(agentruns: Controller, manager: Manager, settings: Settings) -> None:
    """A Budget's change (its status too: usage falling out of the window) wakes the unsubmitted runs
    counting against it."""
    if settings.supporting_controller.enabled:
        agentruns.watch(BUDGETS, ix.runs_for(manager.cache, RUN_BUDGET, AGENT_BUDGET))


def install_supporting_kinds(
    manager: Manager, settings: Settings, events: Recorder, clock: Callable[[], datetime]
) -> None:
    if not settings.supporting_controller.enabled:
        return
    cache = manager.cache
    for ref in SUPPORTING_KINDS:
        cache.informer(ref)
    install_signal_indexes(cache)
    install_budget_indexes(cache)
    tuning = settings.tuning
    env = CheckEnv(settings=settings, client=manager.client, cache=cache)

    def builder() -> Builder:
        return Builder(manager).with_options(
            max_concurrent_reconciles=tuning.supporting_workers,
            reconcile_timeout=tuning.reconcile_timeout_seconds,
        )

    (
        builder()
        .for_(APPROVALPOLICIES, GenerationChanged())
        .watches(SIGNALDELIVERIES, target_of_delivery(APPROVAL_POLICY))
        .named("approvalpolicy")
        .complete(SupportingReconciler(APPROVALPOLICIES, check_approval_policy, env, events, clock))
    )
    (
        builder()
        .for_(SIGNALS, GenerationChanged())
        .watches(SIGNALDELIVERIES, target_of_delivery(SIGNAL))
        .named("signal")
        .complete(SupportingReconciler(SIGNALS, check_signal, env, events, clock))
    )
    (
        builder()
        .for_(SIGNALDELIVERIES, GenerationChanged())
        .watches(SIGNALS, undelivered_for(cache, SIGNAL))
        .watches(APPROVALPOLICIES, undelivered_for(cache, APPROVAL_POLICY))
        .named("signaldelivery")
        .complete(
            SupportingReconciler(SIGNALDELIVERIES, make_check_signal_delivery(clock), env, events, clock)
        )
    )
    budgets = (
        builder()
        .for_(BUDGETS, GenerationChanged())
        .watches(AGENTRUNS, budget_of_run(cache))
        .watches(AGENTS, budgets_of_agent, GenerationChanged())
        .named("budget")
        .complete(BudgetReconciler(manager.client, cache, events, clock))
    )
    if settings.orchestration_controller.enabled:  # ToolRuns count too (jangar.controllers.run_budgets)
        budgets.watch(TOOLRUNS, budget_of_run(cache))
