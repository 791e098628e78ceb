"""Fire a Schedule: create the run of one tick from the Schedule's template ConfigMap.

`jangar schedule fire --schedule NS/NAME` runs this in the CronJob's pod (in-cluster config, the Schedule's
ServiceAccount); `agentctl schedule fire --now NS/NAME` runs it from a shell. Steps:

1. the tick: the `batch.kubernetes.io/cronjob-scheduled-timestamp` annotation of the pod's Job (named by
   `$JANGAR_SCHEDULE_JOB_NAME`, the downward API), else the minute the CronJob controller encoded in the
   Job's name (`<cronjob>-<minutes since epoch>`), else now, truncated to the minute;
2. the Schedule is read: gone → an error; `spec.suspend` → nothing is created (unless `force`, which
   `--now` sets: a manual fire of a suspended Schedule is allowed);
3. the template `<schedule>-template` (`run.json`) is read and `run_for_tick` gives the run: the name
   `<schedule>-<YYYYMMDDHHMM>` and the delivery id `schedule:<ns>/<name>@<tick>` are functions of the tick;
4. the run is created; AlreadyExists with the Schedule's label is success (`created=False`): a retried
   Job, a second pod of the same Job or a duplicate fire of the same tick creates nothing more. A name held
   by a run that is not this Schedule's is an error.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jangar.api.contract import ANNOTATION_CRONJOB_SCHEDULED_TIMESTAMP, LABEL_SCHEDULE
from jangar.api.refs import SCHEDULES, ref_for
from jangar.runtime import AlreadyExistsError, ApiError, Client, NotFoundError
from jangar.runtime.resources import CONFIGMAPS, JOBS
from jangar.scheduler.naming import label_value
from jangar.scheduler.schedules import (
    TEMPLATE_KEY,
    TemplateError,
    cronjob_name,
    delivery_id,
    parse_template,
    run_for_tick,
    template_name,
    tick_from_job_name,
    truncate_to_minute,
)
from jangar.services.errors import ServiceError

__all__ = ["FireResult", "ScheduleFireError", "describe", "fire_schedule", "resolve_tick", "split_schedule"]


class ScheduleFireError(ServiceError):
    """The tick's run cannot be created (no Schedule, no template, a name taken by another run)."""


@dataclass(frozen=True)
class FireResult:
    tick: datetime
    delivery_id: str
    #: the run (created, or found for this tick); None when the Schedule is suspended
    run: dict[str, Any] | None
    created: bool
    skipped: str | None = None


def _parse_timestamp(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def resolve_tick(
    client: Client, namespace: str, schedule: str, job_name: str | None, now: datetime
) -> datetime:
    """The tick this fire is for (see the module docstring), truncated to the minute, in UTC."""
    if job_name:
        with contextlib.suppress(ApiError):  # no access to Jobs, or the Job is gone: use its name
            job = await client.get(JOBS, job_name, namespace)
            annotations = (job.get("metadata") or {}).get("annotations") or {}
            stamp = _parse_timestamp(annotations.get(ANNOTATION_CRONJOB_SCHEDULED_TIMESTAMP))
            if stamp is not None:
                return truncate_to_minute(stamp)
        from_name = tick_from_job_name(job_name, cronjob_name(schedule))
        if from_name is not None:
            return from_name
    return truncate_to_minute(now)


async def fire_schedule(
    client: Client,
    namespace: str,
    schedule: str,
    *,
    tick: datetime,
    force: bool = False,
) -> FireResult:
    did = delivery_id(namespace, schedule, tick)
    try:
        obj = await client.get(SCHEDULES, schedule, namespace)
    except NotFoundError:
        raise ScheduleFireError(f"Schedule {namespace}/{schedule} not found") from None
    if (obj.get("spec") or {}).get("suspend") and not force:
        return FireResult(tick, did, None, False, skipped="the Schedule is suspended (spec.suspend)")
    try:
        cm = await client.get(CONFIGMAPS, template_name(schedule), namespace)
    except NotFoundError:
        raise ScheduleFireError(
            f"template ConfigMap {namespace}/{template_name(schedule)} not found: the Schedule is not "
            "Active (see its status)"
        ) from None
    try:
        template = parse_template((cm.get("data") or {}).get(TEMPLATE_KEY))
    except TemplateError as err:
        raise ScheduleFireError(f"ConfigMap {namespace}/{template_name(schedule)}: {err}") from None
    manifest = run_for_tick(template, namespace, schedule, tick)
    ref = ref_for(str(manifest["kind"]))
    name = str(manifest["metadata"]["name"])
    try:
        created = await client.create(ref, manifest)
        return FireResult(tick, did, created, True)
    except AlreadyExistsError:
        existing = await client.get(ref, name, namespace)
    labels = (existing.get("metadata") or {}).get("labels") or {}
    if labels.get(LABEL_SCHEDULE) != label_value(schedule):
        raise ScheduleFireError(
            f"{ref.kind} {namespace}/{name} exists and was not created by Schedule {schedule}"
        )
    return FireResult(tick, did, existing, False)


def describe(namespace: str, schedule: str, result: FireResult) -> str:
    """One line for a shell: what the fire did."""
    tick = result.tick.strftime("%Y-%m-%dT%H:%M:%SZ")
    if result.run is None:
        return f"schedule.schedules.proompteng.ai/{schedule} not fired for {tick}: {result.skipped}"
    kind = str(result.run.get("kind") or "AgentRun").lower()
    group = "orchestration" if kind == "orchestrationrun" else "agents"
    verb = "created" if result.created else "unchanged (already created for this tick)"
    name = result.run["metadata"]["name"]
    return f"{kind}.{group}.proompteng.ai/{name} {verb} (tick {tick}, delivery id {result.delivery_id})"


def split_schedule(text: str, default_namespace: str | None = None) -> tuple[str, str]:
    """`NS/NAME` (or `NAME` with a default namespace) → (namespace, name); ValueError otherwise."""
    ns, sep, name = text.partition("/")
    if not sep:
        ns, name = default_namespace or "", text
    if not ns or not name or "/" in name:
        raise ValueError(f"expected NAMESPACE/NAME, got {text!r}")
    return ns, name
