"""Cache scopes, indexes and watches of the Tool and ToolRun controllers (called by `setup.install`).

They run in the manager's process behind `orchestrationController.enabled`, in its namespaces
(`JANGAR_ORCHESTRATION_CONTROLLER_NAMESPACES`), as in the reference.

Jobs and Pods are cached only when labelled. A label selector cannot say "agent-run OR tool-run", so the Job
and Pod caches get a second scope (`ResourceCacheOptions.also`): the informers selecting
`jangar.proompteng.ai/tool-run` in the orchestration namespaces, beside the AgentRun informers; reads are
their union. Nothing else in the namespace (other people's Jobs and Pods) is cached.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from datetime import datetime

from jangar.api.contract import LABEL_TOOL_RUN, is_terminal
from jangar.api.refs import BUDGETS, TOOLRUNS, TOOLS
from jangar.controllers.kinds import JOBS, PODS
from jangar.controllers.recording import RunRecorderProtocol
from jangar.controllers.run_budgets import toolruns_for_budget
from jangar.controllers.supporting import CheckEnv, SupportingReconciler
from jangar.controllers.tool import check_tool
from jangar.controllers.toolrun.apply import ToolRunApplier
from jangar.controllers.toolrun.reconciler import ToolRunReconciler
from jangar.controllers.toolrun.snapshot import tool_name
from jangar.runtime import (
    Builder,
    CacheScope,
    GenerationChanged,
    JsonObject,
    Manager,
    Recorder,
    Request,
    ResourceCacheOptions,
)
from jangar.settings import Settings

__all__ = ["TOOLRUN_TOOL_INDEX", "install_tools", "scope_tool_cache"]

TOOLRUN_TOOL_INDEX = "toolrun-tool"
"""ToolRuns by `<namespace>/<spec.toolRef.name>`: a Tool event wakes the runs waiting for it."""


def _namespaces(settings: Settings) -> list[str]:
    """The orchestration controller's namespaces; `[]` is all of them (an explicit "all" in a scope)."""
    ctl = settings.orchestration_controller
    return [] if ctl.all_namespaces else list(ctl.namespaces)


def scope_tool_cache(manager: Manager, settings: Settings) -> None:
    """Cache Tools, ToolRuns, and the Jobs/Pods labelled for ToolRuns (before any of their informers exists)."""
    if not settings.orchestration_controller.enabled:
        return
    namespaces = _namespaces(settings)
    options = manager.cache.options
    by_resource = dict(options.by_resource)
    for ref in (TOOLS, TOOLRUNS):
        by_resource.setdefault(ref, ResourceCacheOptions(namespaces=namespaces))
    scope = CacheScope(namespaces=namespaces, label_selector=LABEL_TOOL_RUN)
    for ref in (JOBS, PODS):
        current = by_resource.get(ref)
        if current is None:
            by_resource[ref] = ResourceCacheOptions(namespaces=namespaces, label_selector=LABEL_TOOL_RUN)
        elif scope not in current.also:
            by_resource[ref] = dataclasses.replace(current, also=(*current.also, scope))
    manager.cache.options = dataclasses.replace(options, by_resource=by_resource)


def _toolrun_tool(obj: JsonObject) -> Iterable[str]:
    name = tool_name(obj)
    ns = (obj.get("metadata") or {}).get("namespace") or ""
    return [f"{ns}/{name}"] if name else []


def _pod_to_toolrun(manager: Manager) -> Callable[[JsonObject], list[Request]]:
    """A Pod → the ToolRun controlling its Job."""

    def mapper(pod: JsonObject) -> list[Request]:
        meta = pod.get("metadata") or {}
        ns = meta.get("namespace")
        for ref in meta.get("ownerReferences") or ():
            if ref.get("kind") == "Job" and ref.get("controller"):
                job = manager.cache.get(JOBS, str(ref.get("name")), ns, copy=False)
                for owner in ((job or {}).get("metadata") or {}).get("ownerReferences") or ():
                    if owner.get("kind") == "ToolRun" and owner.get("controller"):
                        return [Request(ns, str(owner["name"]))]
        return []

    return mapper


def _toolruns_for_tool(manager: Manager) -> Callable[[JsonObject], list[Request]]:
    """A Tool → its ToolRuns that have not finished (only unsubmitted ones act on it; the rest ignore it)."""

    def mapper(tool: JsonObject) -> list[Request]:
        meta = tool.get("metadata") or {}
        ns = str(meta.get("namespace") or "")
        runs = manager.cache.list(
            TOOLRUNS, ns, index=(TOOLRUN_TOOL_INDEX, f"{ns}/{meta.get('name')}"), copy=False
        )
        return [
            Request(ns, str(r["metadata"]["name"]))
            for r in runs
            if not is_terminal((r.get("status") or {}).get("phase"))
            and not (r.get("status") or {}).get("jobRef")
        ]

    return mapper


def install_tools(
    manager: Manager,
    settings: Settings,
    events: Recorder,
    clock: Callable[[], datetime],
    recorder: RunRecorderProtocol | None = None,
) -> ToolRunReconciler | None:
    """Register the Tool and ToolRun controllers (after `scope_tool_cache`); `None` when disabled."""
    if not settings.orchestration_controller.enabled:
        return None
    cache = manager.cache
    for ref in (TOOLS, TOOLRUNS):
        cache.informer(ref)
    cache.add_index(TOOLRUNS, TOOLRUN_TOOL_INDEX, _toolrun_tool)
    tuning = settings.tuning
    reconciler = ToolRunReconciler(
        settings=settings,
        cache=cache,
        applier=ToolRunApplier(client=manager.client, cache=cache, events=events, recorder=recorder),
        clock=clock,
    )
    controller = (
        Builder(manager)
        .for_(TOOLRUNS)
        .owns(JOBS)
        .watches(PODS, _pod_to_toolrun(manager))
        .watches(TOOLS, _toolruns_for_tool(manager), GenerationChanged())
        .with_options(
            max_concurrent_reconciles=tuning.supporting_workers,
            reconcile_timeout=tuning.reconcile_timeout_seconds,
        )
        .named("toolrun")
        .complete(reconciler)
    )
    if settings.supporting_controller.enabled:  # a Budget change wakes the ToolRuns held on it
        controller.watch(BUDGETS, toolruns_for_budget(cache))
    env = CheckEnv(settings=settings, client=manager.client, cache=cache)
    (
        Builder(manager)
        .for_(TOOLS, GenerationChanged())
        .with_options(
            max_concurrent_reconciles=tuning.supporting_workers,
            reconcile_timeout=tuning.reconcile_timeout_seconds,
        )
        .named("tool")
        .complete(SupportingReconciler(TOOLS, check_tool, env, events, clock))
    )
    return reconciler
