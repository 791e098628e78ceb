"""Everything one Schedule decision reads, from the informer cache only: the Schedule, its target run, its
template ConfigMap and CronJob (cached by the schedule label), and the runs its ticks created (by the same
label), plus what the CronJob is built from (image, ServiceAccount)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jangar.api.contract import LABEL_SCHEDULE
from jangar.api.refs import AGENTRUNS, ORCHESTRATIONRUNS, SCHEDULES
from jangar.controllers.kinds import CONFIGMAPS
from jangar.runtime import CacheReader, InformerNotRegistered, JsonObject, ResourceRef, controllerutil
from jangar.scheduler.naming import label_value
from jangar.scheduler.schedules import CRONJOBS, CronJobInputs, cronjob_name, template_name
from jangar.settings import Settings

__all__ = ["RUN_KINDS", "ScheduleSnapshot", "cronjob_inputs", "read_snapshot", "target_of"]

RUN_KINDS: dict[str, ResourceRef] = {"AgentRun": AGENTRUNS, "OrchestrationRun": ORCHESTRATIONRUNS}


def target_of(schedule: Mapping[str, Any]) -> tuple[str, str, str]:
    """(kind, name, namespace) of `spec.targetRef` (empty strings when absent); the namespace defaults to
    the Schedule's."""
    ref = (schedule.get("spec") or {}).get("targetRef")
    ref = ref if isinstance(ref, Mapping) else {}
    ns = str((schedule.get("metadata") or {}).get("namespace") or "")
    return str(ref.get("kind") or ""), str(ref.get("name") or "").strip(), str(ref.get("namespace") or ns)


def cronjob_inputs(schedule: Mapping[str, Any], settings: Settings) -> CronJobInputs:
    """The reference's choice: `JANGAR_SCHEDULE_RUNNER_IMAGE`, else `JANGAR_IMAGE`; the ServiceAccount
    `JANGAR_SCHEDULE_SERVICE_ACCOUNT`, else jangar's own (`JANGAR_SERVICE_ACCOUNT_NAME`) for a Schedule in
    jangar's namespace, else the namespace's default."""
    meta = schedule.get("metadata") or {}
    sa = settings.schedule_service_account
    if not sa and settings.pod_namespace and meta.get("namespace") == settings.pod_namespace:
        sa = settings.service_account_name
    owner = controllerutil.owner_reference(dict(schedule), SCHEDULES) if meta.get("uid") else None
    return CronJobInputs(
        image=settings.schedule_runner_image or settings.image, service_account=sa, owner_reference=owner
    )


@dataclass(frozen=True)
class ScheduleSnapshot:
    schedule: Mapping[str, Any]
    now: datetime
    inputs: CronJobInputs
    #: the run named by spec.targetRef (None: not found, or not a supported kind)
    target: Mapping[str, Any] | None = None
    template: Mapping[str, Any] | None = None
    cronjob: Mapping[str, Any] | None = None
    #: runs carrying this Schedule's label (those its ticks created)
    runs: Sequence[Mapping[str, Any]] = ()

    @property
    def name(self) -> str:
        return str(self.schedule["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.schedule["metadata"]["namespace"])


def _get(cache: CacheReader, ref: ResourceRef, name: str, ns: str) -> Mapping[str, Any] | None:
    try:
        return cache.get(ref, name, ns, copy=False)
    except InformerNotRegistered:  # a namespace (or kind) this process does not watch
        return None


def _list(cache: CacheReader, ref: ResourceRef, ns: str, labels: Mapping[str, str]) -> list[JsonObject]:
    try:
        return cache.list(ref, ns, labels=labels, copy=False)
    except InformerNotRegistered:
        return []


def read_snapshot(
    cache: CacheReader, schedule: JsonObject, settings: Settings, now: datetime
) -> ScheduleSnapshot:
    meta = schedule["metadata"]
    ns, name = str(meta["namespace"]), str(meta["name"])
    kind, target_name, target_ns = target_of(schedule)
    ref = RUN_KINDS.get(kind)
    target = _get(cache, ref, target_name, target_ns) if ref and target_name else None
    labels = {LABEL_SCHEDULE: label_value(name)}
    runs: list[Mapping[str, Any]] = []
    for run_ref in RUN_KINDS.values():
        runs.extend(_list(cache, run_ref, ns, labels))
    return ScheduleSnapshot(
        schedule=schedule,
        now=now,
        inputs=cronjob_inputs(schedule, settings),
        target=target,
        template=_get(cache, CONFIGMAPS, template_name(name), ns),
        cronjob=_get(cache, CRONJOBS, cronjob_name(name), ns),
        runs=runs,
    )
