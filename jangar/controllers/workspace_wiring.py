"""Wiring of the Workspace and Artifact controllers (issue 11), beside the AgentRun controller.

They run with the agents controller (`JANGAR_AGENTS_CONTROLLER_ENABLED`) in its namespaces. `setup.install`
calls `scope_workspace_cache` before any informer exists, then `install_workspaces` with the AgentRun
controller, which a Workspace's change wakes (the unsubmitted runs naming it in `spec.workspaceRef`).

| Controller | Reconciles | Also woken by |
|---|---|---|
| `workspace` | Workspace (generation) | its PersistentVolumeClaim (owner reference); a timer until its expiry |
| `artifact` | Artifact (generation) | a timer until its `lifecycle.ttlDays` expiry |
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime

from jangar.api.contract import LABEL_WORKSPACE
from jangar.controllers import indexes as ix
from jangar.controllers.artifact import ArtifactReconciler
from jangar.controllers.kinds import AGENTRUNS, ARTIFACTS, PVCS, WORKSPACES
from jangar.controllers.storage_metrics import StorageMetrics
from jangar.controllers.workspace import WorkspaceReconciler
from jangar.runtime import (
    Builder,
    Controller,
    GenerationChanged,
    JsonObject,
    Manager,
    Recorder,
    ResourceCacheOptions,
)
from jangar.runtime.cache import Cache
from jangar.settings import Settings

__all__ = ["RUN_WORKSPACE", "install_workspaces", "run_workspace", "scope_workspace_cache"]

RUN_WORKSPACE = "agentrun-workspace"


def run_workspace(run: JsonObject) -> list[str]:
    """Index: `<namespace>/<spec.workspaceRef.name>`."""
    ref = ((run.get("spec") or {}).get("workspaceRef") or {}).get("name")
    ns = (run.get("metadata") or {}).get("namespace") or ""
    return [f"{ns}/{ref}"] if isinstance(ref, str) and ref else []


def scope_workspace_cache(manager: Manager, settings: Settings) -> None:
    """Workspaces and Artifacts in the agents controller's namespaces; only the PVCs Workspaces made."""
    ac = settings.agents_controller
    namespaces = None if ac.all_namespaces else list(ac.namespaces)
    options = manager.cache.options
    by_resource = dict(options.by_resource)
    for ref in (WORKSPACES, ARTIFACTS):
        by_resource.setdefault(ref, ResourceCacheOptions(namespaces=namespaces))
    by_resource.setdefault(PVCS, ResourceCacheOptions(namespaces=namespaces, label_selector=LABEL_WORKSPACE))
    manager.cache.options = dataclasses.replace(options, by_resource=by_resource)


def install_workspace_indexes(cache: Cache) -> None:
    cache.add_index(AGENTRUNS, RUN_WORKSPACE, run_workspace)


def install_workspaces(
    agentruns: Controller,
    manager: Manager,
    settings: Settings,
    events: Recorder,
    clock: Callable[[], datetime],
) -> None:
    cache = manager.cache
    for ref in (WORKSPACES, ARTIFACTS, PVCS):
        cache.informer(ref)
    install_workspace_indexes(cache)
    metrics = StorageMetrics.for_registry(manager.metrics.registry)
    metrics.watch(cache)
    agentruns.watch(WORKSPACES, ix.runs_for(cache, RUN_WORKSPACE))
    tuning = settings.tuning

    def builder() -> Builder:
        return Builder(manager).with_options(
            max_concurrent_reconciles=tuning.supporting_workers,
            reconcile_timeout=tuning.reconcile_timeout_seconds,
        )

    (
        builder()
        .for_(WORKSPACES, GenerationChanged())
        .owns(PVCS)
        .named("workspace")
        .complete(WorkspaceReconciler(manager.client, cache, events, clock, metrics))
    )
    (
        builder()
        .for_(ARTIFACTS, GenerationChanged())
        .named("artifact")
        .complete(ArtifactReconciler(manager.client, cache, events, clock, metrics))
    )
