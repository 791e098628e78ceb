"""Cache scopes, indexes and watches of the Schedule controller (called by `setup.install`).

It runs behind `supportingController.enabled` in its namespaces (`JANGAR_SUPPORTING_CONTROLLER_NAMESPACES`),
as in the reference. Only ConfigMaps and CronJobs carrying `schedules.proompteng.ai/schedule` are cached
(a second scope beside any other controller's, never a wider one).

| Event | Wakes |
|---|---|
| Schedule (generation) | itself |
| its CronJob or template ConfigMap (owner reference) | the Schedule (a deleted child is recreated; the CronJob's `lastScheduleTime`) |
| an AgentRun / OrchestrationRun | the Schedules targeting it (index `schedule-target`) and the Schedule whose label it carries (a tick's run: `lastRun`) |
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from datetime import datetime

from jangar.api.contract import LABEL_SCHEDULE
from jangar.api.refs import SCHEDULES
from jangar.controllers.kinds import CONFIGMAPS
from jangar.controllers.schedule.apply import ScheduleApplier
from jangar.controllers.schedule.metrics import ScheduleMetrics
from jangar.controllers.schedule.reconciler import ScheduleReconciler
from jangar.controllers.schedule.snapshot import RUN_KINDS, target_of
from jangar.runtime import (
    Builder,
    CacheScope,
    GenerationChanged,
    InformerNotRegistered,
    JsonObject,
    Manager,
    Request,
    ResourceCacheOptions,
)
from jangar.scheduler.naming import label_value
from jangar.scheduler.schedules import CRONJOBS
from jangar.settings import Settings

__all__ = ["SCHEDULE_LABEL_INDEX", "SCHEDULE_TARGET_INDEX", "install_schedules", "scope_schedule_cache"]

SCHEDULE_TARGET_INDEX = "schedule-target"
"""Schedules by `<namespace>/<kind>/<targetRef.name>`."""
SCHEDULE_LABEL_INDEX = "schedule-label"
"""Schedules by `<namespace>/<label value of the name>` (what a tick's run carries)."""


def _namespaces(settings: Settings) -> list[str]:
    ctl = settings.supporting_controller
    return [] if ctl.all_namespaces else list(ctl.namespaces)


def scope_schedule_cache(manager: Manager, settings: Settings) -> None:
    """Cache Schedules and the labelled ConfigMaps and CronJobs; the run kinds keep any scope they have."""
    if not settings.supporting_controller.enabled:
        return
    namespaces = _namespaces(settings)
    options = manager.cache.options
    by_resource = dict(options.by_resource)
    for ref in (SCHEDULES, *RUN_KINDS.values()):
        by_resource.setdefault(ref, ResourceCacheOptions(namespaces=namespaces))
    scope = CacheScope(namespaces=namespaces, label_selector=LABEL_SCHEDULE)
    for ref in (CONFIGMAPS, CRONJOBS):
        current = by_resource.get(ref)
        if current is None:
            by_resource[ref] = ResourceCacheOptions(namespaces=namespaces, label_selector=LABEL_SCHEDULE)
        elif current.label_selector != LABEL_SCHEDULE and scope not in current.also:
            by_resource[ref] = dataclasses.replace(current, also=(*current.also, scope))
    manager.cache.options = dataclasses.replace(options, by_resource=by_resource)


def _by_target(obj: JsonObject) -> Iterable[str]:
    kind, name, ns = target_of(obj)
    return [f"{ns}/{kind}/{name}"] if kind and name else []


def _by_label(obj: JsonObject) -> Iterable[str]:
    meta = obj.get("metadata") or {}
    return [f"{meta.get('namespace')}/{label_value(str(meta.get('name') or ''))}"]


def _schedules_for_run(manager: Manager, kind: str) -> Callable[[JsonObject], list[Request]]:
    def mapper(run: JsonObject) -> list[Request]:
        meta = run.get("metadata") or {}
        ns = str(meta.get("namespace") or "")
        found: dict[str, None] = {}
        keys = [(SCHEDULE_TARGET_INDEX, f"{ns}/{kind}/{meta.get('name')}")]
        label = (meta.get("labels") or {}).get(LABEL_SCHEDULE)
        if label:
            keys.append((SCHEDULE_LABEL_INDEX, f"{ns}/{label}"))
        for index in keys:
            try:
                for s in manager.cache.list(SCHEDULES, ns, index=index, copy=False):
                    found[str(s["metadata"]["name"])] = None
            except InformerNotRegistered:
                return []
        return [Request(ns, name) for name in found]

    return mapper


def install_schedules(
    manager: Manager, settings: Settings, clock: Callable[[], datetime]
) -> ScheduleReconciler | None:
    """Register the Schedule controller (after `scope_schedule_cache`); `None` when disabled."""
    if not settings.supporting_controller.enabled:
        return None
    cache = manager.cache
    for ref in (SCHEDULES, CONFIGMAPS, CRONJOBS, *RUN_KINDS.values()):
        cache.informer(ref)
    cache.add_index(SCHEDULES, SCHEDULE_TARGET_INDEX, _by_target)
    cache.add_index(SCHEDULES, SCHEDULE_LABEL_INDEX, _by_label)
    events = manager.event_recorder("jangar-schedule-controller")
    reconciler = ScheduleReconciler(
        settings=settings,
        cache=cache,
        applier=ScheduleApplier(client=manager.client, events=events),
        clock=clock,
        metrics=ScheduleMetrics(manager.metrics.registry),
    )
    builder = Builder(manager).for_(SCHEDULES, GenerationChanged()).owns(CRONJOBS).owns(CONFIGMAPS)
    for kind, ref in RUN_KINDS.items():
        builder = builder.watches(ref, _schedules_for_run(manager, kind))
    tuning = settings.tuning
    builder.with_options(
        max_concurrent_reconciles=tuning.supporting_workers,
        reconcile_timeout=tuning.reconcile_timeout_seconds,
    ).named("schedule").complete(reconciler)
    return reconciler
