"""Wire the agents controllers into a manager: cache scoping, indexes, controllers and their watches.

The composition root (`jangar.app`) calls::

    installed = install(manager, ControllerDeps(settings=settings, client=client, recorder=recorder))

before `manager.start()`. Every controller needs leadership (only the leader writes); caches run on every
replica so a standby is warm. Namespaces come from `JANGAR_AGENTS_CONTROLLER_NAMESPACES` (`*`: all).
Jobs and Pods are cached only when they carry the `agents.proompteng.ai/agent-run` label (or, for ToolRuns,
`jangar.proompteng.ai/tool-run`: `toolrun.wiring.scope_tool_cache`); Secrets are never
cached (read on demand).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from jangar.admission import AdmissionLimits
from jangar.audit import AuditSink
from jangar.controllers import indexes as ix
from jangar.controllers.admission_gate import AdmissionGate
from jangar.controllers.agent import check_agent
from jangar.controllers.agentprovider import make_check_agent_provider
from jangar.controllers.agentrun import AgentRunReconciler
from jangar.controllers.agentrun.apply import PlanApplier
from jangar.controllers.app_token_refresh import install_app_token_refresh
from jangar.controllers.app_tokens import AppTokens
from jangar.controllers.idempotency import install_idempotency
from jangar.controllers.implementationsource import make_check_implementation_source
from jangar.controllers.implementationspec import check_implementation_spec
from jangar.controllers.kinds import (
    AGENTPROVIDERS,
    AGENTRUNS,
    AGENTS,
    IMPLEMENTATIONSOURCES,
    IMPLEMENTATIONSPECS,
    JOBS,
    MEMORIES,
    PODS,
    SECRETBINDINGS,
    SERVICEACCOUNTS,
    VCSPROVIDERS,
)
from jangar.controllers.lean_cache import install_pod_index, lean_job, lean_pod
from jangar.controllers.memory import check_memory
from jangar.controllers.metrics import RunMetrics
from jangar.controllers.provider_health import HealthChanged, RunFinished, provider_of_finished_run
from jangar.controllers.recording import RunRecorderProtocol
from jangar.controllers.runner_sa import scope_service_account_cache
from jangar.controllers.secretbinding import check_secret_binding
from jangar.controllers.supporting import CheckEnv, CheckFunc, SupportingReconciler
from jangar.controllers.supporting_kinds import (
    install_supporting_kinds,
    scope_supporting_cache,
    watch_budgets,
)
from jangar.controllers.sweep import install_sweep
from jangar.controllers.toolrun import ToolRunReconciler
from jangar.controllers.toolrun.wiring import install_tools, scope_tool_cache
from jangar.controllers.versioncontrolprovider import check_vcs_provider
from jangar.controllers.workspace_wiring import install_workspaces, scope_workspace_cache
from jangar.runtime import (
    Builder,
    Client,
    GenerationChanged,
    JsonObject,
    Manager,
    Or,
    Recorder,
    Request,
    ResourceCacheOptions,
    ResourceRef,
)
from jangar.scheduler.ownership import LABEL_RUN
from jangar.settings import Settings

__all__ = ["ControllerDeps", "Installed", "install"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _CloseOnStop:
    """Closes the token minter's HTTP session at shutdown (non-leader runnables stop after the
    controllers)."""

    need_leader_election = False

    def __init__(self, tokens: AppTokens) -> None:
        self.tokens = tokens

    async def start(self) -> None:
        return None

    async def stop(self, timeout: float) -> None:
        await self.tokens.close()


@dataclass(frozen=True)
class ControllerDeps:
    settings: Settings
    client: Client
    recorder: RunRecorderProtocol | None = None
    webhooks_served: bool = False
    """The webhook intake route is served by this process (ImplementationSource `WebhookReady` needs it)."""
    audit: AuditSink | None = None
    """issue 13: the process's audit sink (admission, idempotency, step and approval decisions)."""


@dataclass
class Installed:
    """What `install` built (tests inspect the gate and the reconciler)."""

    gate: AdmissionGate
    agentruns: AgentRunReconciler
    events: Recorder
    toolruns: ToolRunReconciler | None = None


_OWN_KINDS = (
    AGENTRUNS,
    AGENTS,
    AGENTPROVIDERS,
    IMPLEMENTATIONSPECS,
    IMPLEMENTATIONSOURCES,
    MEMORIES,
    VCSPROVIDERS,
    SECRETBINDINGS,
)


def _scope_cache(manager: Manager, settings: Settings) -> None:
    """Watch the configured namespaces, and only labelled Jobs and Pods (set before any informer exists)."""
    namespaces = (
        None if settings.agents_controller.all_namespaces else list(settings.agents_controller.namespaces)
    )
    options = manager.cache.options
    by_resource = dict(options.by_resource)
    for ref in _OWN_KINDS:
        by_resource.setdefault(ref, ResourceCacheOptions(namespaces=namespaces))
    for ref in (JOBS, PODS):
        by_resource.setdefault(ref, ResourceCacheOptions(namespaces=namespaces, label_selector=LABEL_RUN))
    # Lean caches (issue 14 §4): Jobs and Pods keep only what reconcilers read (`lean_cache`).
    for ref, lean in ((JOBS, lean_job), (PODS, lean_pod)):
        by_resource[ref] = dataclasses.replace(by_resource[ref], transform=lean)
    manager.cache.options = dataclasses.replace(options, by_resource=by_resource)


def _pod_to_run(manager: Manager) -> Callable[[JsonObject], list[Request]]:
    """A Pod → the AgentRun controlling its Job (Pods are owned by Jobs, Jobs by runs)."""

    def mapper(pod: JsonObject) -> list[Request]:
        meta = pod.get("metadata") or {}
        ns = meta.get("namespace")
        for ref in meta.get("ownerReferences") or ():
            if ref.get("kind") == "Job" and ref.get("controller"):
                job = manager.cache.get(JOBS, str(ref.get("name")), ns, copy=False)
                for owner in ((job or {}).get("metadata") or {}).get("ownerReferences") or ():
                    if owner.get("kind") == "AgentRun" and owner.get("controller"):
                        return [Request(ns, str(owner["name"]))]
        return []

    return mapper


def _is_default_memory(obj: JsonObject) -> bool:
    return bool((obj.get("spec") or {}).get("default"))


def install(
    manager: Manager, deps: ControllerDeps, *, clock: Callable[[], datetime] | None = None
) -> Installed:
    """Register the AgentRun controller and the supporting controllers; `clock` is for tests."""
    now = clock or _utcnow
    tuning = deps.settings.tuning
    settings = deps.settings
    _scope_cache(manager, settings)
    scope_supporting_cache(manager, settings)
    scope_tool_cache(manager, settings)
    scope_workspace_cache(manager, settings)
    scope_service_account_cache(manager, settings)  # issue 12
    cache = manager.cache
    for ref in (*_OWN_KINDS, JOBS, PODS):
        cache.informer(ref)
    ix.install_indexes(cache)
    install_pod_index(cache)  # issue 14 §2: a run's Pods by index, not a namespace scan
    events = manager.event_recorder("jangar-controller")
    gate = AdmissionGate(
        cache,
        AdmissionLimits.from_settings(settings),
        registry=manager.metrics.registry,
        clock=now,
        client=manager.client,
        namespaces=None
        if settings.agents_controller.all_namespaces
        else list(settings.agents_controller.namespaces),
    )
    tokens = AppTokens(manager.client, clock=now)
    metrics = RunMetrics(manager.metrics.registry)
    applier = PlanApplier(
        client=manager.client,
        cache=cache,
        gate=gate,
        events=events,
        recorder=deps.recorder,
        app_tokens=tokens,
        metrics=metrics,
        settings=settings,
    )
    claims = install_idempotency(manager, settings, now)  # issue 13: durable idempotency keys
    runs = AgentRunReconciler(
        settings=settings,
        client=manager.client,
        cache=cache,
        gate=gate,
        applier=applier,
        metrics=metrics,
        clock=now,
        idempotency=claims,
        audit=deps.audit,
    )
    manager.add(_CloseOnStop(tokens), need_leader_election=False)
    if settings.agents_controller.enabled:
        controller = (
            Builder(manager)
            .for_(AGENTRUNS)
            .owns(JOBS)
            .watches(PODS, _pod_to_run(manager))
            .watches(AGENTRUNS, gate.wake_mapper)
            .watches(AGENTS, ix.runs_for(cache, ix.RUN_AGENT), GenerationChanged())
            .watches(
                AGENTPROVIDERS,
                ix.runs_for(cache, None, ix.AGENT_PROVIDER),
                Or((GenerationChanged(), HealthChanged())),  # health: provider_health.py
            )
            .watches(IMPLEMENTATIONSPECS, ix.runs_for(cache, ix.RUN_IMPLEMENTATION), GenerationChanged())
            .watches(
                MEMORIES,
                ix.runs_for(cache, ix.RUN_MEMORY, ix.AGENT_MEMORY, unsubmitted_if=_is_default_memory),
                GenerationChanged(),
            )
            .watches(VCSPROVIDERS, ix.runs_for(cache, ix.RUN_VCS, ix.AGENT_VCS), GenerationChanged())
            .watches(
                SECRETBINDINGS, ix.runs_for(cache, None, unsubmitted_if=lambda _: True), GenerationChanged()
            )
            # issue 12: a run waiting for its ServiceAccount starts when it appears (runner_sa.py)
            .watches(SERVICEACCOUNTS, ix.runs_for(cache, None, unsubmitted_if=lambda _: True))
            .with_options(
                max_concurrent_reconciles=tuning.agentrun_workers,
                reconcile_timeout=tuning.reconcile_timeout_seconds,
            )
            .named("agentrun")
            .complete(runs)
        )
        gate.attach(controller.queue.add)
        # issue 12: GitHub App tokens refreshed before expiry (app_token_refresh.py)
        install_app_token_refresh(manager, tokens, events, clock=now)
        watch_budgets(controller, manager, settings)
        install_workspaces(controller, manager, settings, events, now)
        # issue 13: retention (capped per namespace) and runtime-debris cleanup, one leader-only pass
        install_sweep(manager, settings, deps.recorder, events, now)
        env = CheckEnv(settings=settings, client=manager.client, cache=cache)
        supporting: list[tuple[str, ResourceRef, CheckFunc]] = [
            ("agent", AGENTS, check_agent),
            ("agentprovider", AGENTPROVIDERS, make_check_agent_provider(now)),
            ("implementationspec", IMPLEMENTATIONSPECS, check_implementation_spec),
            (
                "implementationsource",
                IMPLEMENTATIONSOURCES,
                make_check_implementation_source(deps.webhooks_served),
            ),
            ("memory", MEMORIES, check_memory),
            ("versioncontrolprovider", VCSPROVIDERS, check_vcs_provider),
            ("secretbinding", SECRETBINDINGS, check_secret_binding),
        ]
        for name, ref, check in supporting:
            builder = Builder(manager).for_(ref, GenerationChanged())
            if ref is AGENTPROVIDERS:  # drift row 10: a finished run updates its provider's health
                builder = builder.watches(AGENTRUNS, provider_of_finished_run(cache), RunFinished())
            if ref is AGENTS:
                builder = (
                    builder.watches(AGENTPROVIDERS, ix.agents_for(cache, ix.AGENT_PROVIDER))
                    .watches(MEMORIES, ix.agents_for(cache, ix.AGENT_MEMORY))
                    .watches(VCSPROVIDERS, ix.agents_for(cache, ix.AGENT_VCS))
                )
            builder.with_options(
                max_concurrent_reconciles=tuning.supporting_workers,
                reconcile_timeout=tuning.reconcile_timeout_seconds,
            ).named(name).complete(SupportingReconciler(ref, check, env, events, now))
    install_supporting_kinds(manager, settings, events, now)
    toolruns = install_tools(
        manager, settings, manager.event_recorder("jangar-orchestration-controller"), now, deps.recorder
    )
    install_orchestration(manager, deps, clock=clock)
    install_reruns_from_setup(manager, deps, clock=clock)
    install_schedule_controller(manager, deps, clock=clock)
    return Installed(gate=gate, agentruns=runs, events=events, toolruns=toolruns)


# -- orchestration (issue 10): Orchestration and OrchestrationRun, behind orchestrationController.* -------


def install_orchestration(
    manager: Manager, deps: ControllerDeps, *, clock: Callable[[], datetime] | None = None
) -> None:
    """Register the Orchestration and OrchestrationRun controllers (`JANGAR_ORCHESTRATION_CONTROLLER_*`).

    Called by `install`; must run before the cache starts (informers, indexes)."""
    from jangar.api.refs import (
        APPROVALPOLICIES,
        BUDGETS,
        ORCHESTRATIONRUNS,
        ORCHESTRATIONS,
        SIGNALDELIVERIES,
        SIGNALS,
        TOOLRUNS,
        TOOLS,
    )
    from jangar.controllers import orchestration_indexes as oix
    from jangar.controllers.orchestration import REFERENCED_KINDS, check_orchestration
    from jangar.controllers.orchestrationrun import OrchestrationRunReconciler
    from jangar.controllers.orchestrationrun.apply import PlanApplier as OrchestrationRunApplier
    from jangar.controllers.run_budgets import install_run_budget_indexes, orchestrationruns_for_budget

    settings = deps.settings
    scope = settings.orchestration_controller
    if not scope.enabled:
        return
    now = clock or _utcnow
    namespaces = None if scope.all_namespaces else list(scope.namespaces)
    kinds = (ORCHESTRATIONS, ORCHESTRATIONRUNS, TOOLS, TOOLRUNS, APPROVALPOLICIES, SIGNALS, SIGNALDELIVERIES)
    options = manager.cache.options
    by_resource = dict(options.by_resource)
    for ref in kinds:
        by_resource.setdefault(ref, ResourceCacheOptions(namespaces=namespaces))
    manager.cache.options = dataclasses.replace(options, by_resource=by_resource)
    cache = manager.cache
    for ref in (*kinds, AGENTRUNS, AGENTS, IMPLEMENTATIONSPECS):
        cache.informer(ref)
    oix.install_orchestration_indexes(cache)
    install_run_budget_indexes(cache)
    events = manager.event_recorder("jangar-orchestration-controller")
    tuning = settings.tuning
    runs = OrchestrationRunReconciler(
        cache=cache,
        applier=OrchestrationRunApplier(
            client=manager.client, cache=cache, events=events, recorder=deps.recorder, audit=deps.audit
        ),
        tuning=tuning,
        clock=now,
    )
    run_controller = (
        Builder(manager)
        .for_(ORCHESTRATIONRUNS)
        .owns(AGENTRUNS)
        .owns(TOOLRUNS)
        .owns(ORCHESTRATIONRUNS)
        .watches(SIGNALDELIVERIES, oix.runs_waiting_for_delivery(cache))
        .watches(APPROVALPOLICIES, oix.runs_waiting_for_policy(cache), GenerationChanged())
        .watches(ORCHESTRATIONS, oix.runs_for_orchestration(cache), GenerationChanged())
        .with_options(
            max_concurrent_reconciles=tuning.agentrun_workers,
            reconcile_timeout=tuning.reconcile_timeout_seconds,
        )
        .named("orchestrationrun")
        .complete(runs)
    )
    if settings.supporting_controller.enabled:  # a Budget change wakes the runs held on it
        run_controller.watch(BUDGETS, orchestrationruns_for_budget(cache))
    env = CheckEnv(settings=settings, client=manager.client, cache=cache)
    builder = Builder(manager).for_(ORCHESTRATIONS, GenerationChanged())
    for kind, ref in REFERENCED_KINDS.items():
        builder = builder.watches(ref, oix.orchestrations_referencing(cache, kind), GenerationChanged())
    builder.with_options(
        max_concurrent_reconciles=tuning.supporting_workers,
        reconcile_timeout=tuning.reconcile_timeout_seconds,
    ).named("orchestration").complete(
        SupportingReconciler(ORCHESTRATIONS, check_orchestration, env, events, now)
    )


# -- reruns and system-improvement runs (issue 11, §6.10): off unless an orchestration is configured ------


def install_reruns_from_setup(
    manager: Manager, deps: ControllerDeps, *, clock: Callable[[], datetime] | None = None
) -> None:
    """Register the `rerun` controller (`jangar.controllers.rerun`); called by `install`."""
    from jangar.controllers.rerun import install_reruns

    if deps.settings.agents_controller.enabled:
        install_reruns(manager, deps.settings, manager.event_recorder("jangar-rerun-controller"), clock)


# -- schedules (issue 11): Schedule -> template ConfigMap + CronJob, behind supportingController.* --------


def install_schedule_controller(
    manager: Manager, deps: ControllerDeps, *, clock: Callable[[], datetime] | None = None
) -> None:
    """Register the Schedule controller (`jangar.controllers.schedule`); called by `install`."""
    from jangar.controllers.schedule.wiring import install_schedules, scope_schedule_cache

    scope_schedule_cache(manager, deps.settings)
    install_schedules(manager, deps.settings, clock or _utcnow)
