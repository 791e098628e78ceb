"""Schedules, as pure functions: names, cron and time-zone checks, next ticks, the run template, the
CronJob, and the run one tick creates.

The Schedule controller (`jangar.controllers.schedule`) writes two children: the template ConfigMap
`<schedule>-template` (key `run.json`: the target run's kind and spec) and the CronJob `<schedule>-cron`,
whose container runs `jangar schedule fire --schedule NS/NAME`. That command (`jangar.services.schedules`)
reads the template and creates the run with `run_for_tick`: a deterministic name and delivery id derived
from the tick, so a retried or duplicated fire of the same tick finds its run already there.

The reference substituted a random UUID into the template with a shell step that was escaped wrongly (every
create failed, §6.5); here the template is JSON and the substitution is structural.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from jangar.api.contract import (
    ANNOTATION_SCHEDULED_TIME,
    LABEL_MANAGED_BY,
    LABEL_SCHEDULE,
    MANAGED_BY,
    SCHEDULE_DELIVERY_PLACEHOLDER,
    delivery_id_labels,
)
from jangar.runtime import ResourceRef
from jangar.scheduler.naming import dns_label, label_value

__all__ = [
    "CONTAINER_NAME",
    "CRONJOBS",
    "DEFAULT_CONCURRENCY_POLICY",
    "DEFAULT_FAILED_HISTORY",
    "DEFAULT_SUCCESSFUL_HISTORY",
    "ENV_JOB_NAME",
    "TARGET_KINDS",
    "TEMPLATE_KEY",
    "CronJobInputs",
    "TemplateError",
    "build_cronjob",
    "build_template",
    "cron_problem",
    "cronjob_name",
    "delivery_id",
    "next_run_time",
    "parse_template",
    "run_for_tick",
    "run_name",
    "schedule_labels",
    "template_name",
    "tick_from_job_name",
    "timezone_problem",
    "truncate_to_minute",
]

CRONJOBS = ResourceRef("batch", "v1", "CronJob", "cronjobs")
TARGET_KINDS: dict[str, str] = {
    "AgentRun": "agents.proompteng.ai/v1alpha1",
    "OrchestrationRun": "orchestration.proompteng.ai/v1alpha1",
}
"""The kinds a Schedule may target, with their apiVersion."""
TEMPLATE_KEY = "run.json"
CONTAINER_NAME = "schedule-runner"
ENV_JOB_NAME = "JANGAR_SCHEDULE_JOB_NAME"
"""The fire container's env: the name of its Job (downward API, the Job controller's `job-name` label)."""
DEFAULT_CONCURRENCY_POLICY = "Forbid"
DEFAULT_SUCCESSFUL_HISTORY = 3
DEFAULT_FAILED_HISTORY = 1
_TEMPLATE_PREFIX = 45  # the reference's `<schedule(≤45 chars)>-template`
_CRONJOB_PREFIX = 47  # CronJob names may have 52 characters (the Job controller appends `-<11 digits>`)
_MACROS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
_SPEC_KEY = {"AgentRun": "idempotencyKey", "OrchestrationRun": "deliveryId"}


# -- names ----------------------------------------------------------------------------------------------


def template_name(schedule: str) -> str:
    return f"{dns_label(schedule, limit=_TEMPLATE_PREFIX)}-template"


def cronjob_name(schedule: str) -> str:
    return f"{dns_label(schedule, limit=_CRONJOB_PREFIX)}-cron"


def schedule_labels(schedule: str) -> dict[str, str]:
    return {LABEL_SCHEDULE: label_value(schedule), LABEL_MANAGED_BY: MANAGED_BY}


def truncate_to_minute(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def _stamp(tick: datetime) -> str:
    return truncate_to_minute(tick).strftime("%Y%m%d%H%M")


def run_name(schedule: str, tick: datetime) -> str:
    """`<schedule>-<YYYYMMDDHHMM>` (UTC): the same tick always gives the same name."""
    return dns_label(schedule, _stamp(tick))


def delivery_id(namespace: str, schedule: str, tick: datetime) -> str:
    """`schedule:<ns>/<name>@<YYYY-MM-DDTHH:MMZ>`: unique per Schedule and tick, the same on every retry."""
    return f"schedule:{namespace}/{schedule}@{truncate_to_minute(tick).strftime('%Y-%m-%dT%H:%MZ')}"


def tick_from_job_name(job: str, cron_job: str) -> datetime | None:
    """The tick of a Job the CronJob controller created: it names them `<cronjob>-<minutes since epoch>`."""
    prefix = f"{cron_job}-"
    if not job.startswith(prefix) or not job[len(prefix) :].isdigit():
        return None
    return datetime.fromtimestamp(int(job[len(prefix) :]) * 60, UTC)


# -- cron -----------------------------------------------------------------------------------------------


def cron_problem(expr: str | None) -> str | None:
    """Why `expr` is not a schedule the Kubernetes CronJob controller accepts (five fields or a macro)."""
    if expr is not None and not isinstance(expr, str):
        return "spec.cron must be a string (five fields or a macro such as @daily)"
    if not expr or not expr.strip():
        return "spec.cron is required"
    text = expr.strip()
    if text.upper().startswith(("TZ=", "CRON_TZ=")):
        return "spec.cron must not set TZ or CRON_TZ: use spec.timezone"
    if text in _MACROS:
        return None
    if len(text.split()) != 5:
        return f"spec.cron {text!r} must have five fields (minute hour day-of-month month day-of-week)"
    if not croniter.is_valid(text):
        return f"spec.cron {text!r} is not a valid cron expression"
    return None


def timezone_problem(tz: str | None) -> str | None:
    if tz is None or tz == "":
        return None
    if not isinstance(tz, str):
        return "spec.timezone must be a string (an IANA time zone such as Europe/Berlin)"
    shown = tz if len(tz) <= 64 else tz[:61] + "..."
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file name
        return f"spec.timezone {shown!r} is not a known IANA time zone"
    return None


def _expand(expr: str) -> str:
    return {"@annually": "@yearly", "@midnight": "@daily"}.get(expr.strip(), expr.strip())


def next_run_time(expr: str, tz: str | None, after: datetime) -> datetime:
    """The first tick strictly after `after`, in UTC; the cron fields are read in `tz` (default UTC), so
    `0 2 * * *` in Europe/Berlin is 01:00Z in winter and 00:00Z in summer, as the CronJob controller does."""
    zone = ZoneInfo(tz) if tz else UTC
    start = after.astimezone(zone)
    nxt = croniter(_expand(expr), start).get_next(datetime)
    return nxt.astimezone(UTC)


# -- the template ---------------------------------------------------------------------------------------


class TemplateError(ValueError):
    """The template ConfigMap does not hold a usable run."""


_RUN_META_DROP = ("name", "generateName", "namespace")


def build_template(schedule: Mapping[str, Any], target: Mapping[str, Any]) -> dict[str, Any]:
    """The run manifest a tick creates: the target's kind and its whole `spec`, with the delivery-id field
    (`idempotencyKey` for an AgentRun, `deliveryId` for an OrchestrationRun) and label set to the
    placeholder, the schedule label, and the target's own labels and annotations that are not jangar's."""
    kind = str(target.get("kind") or "")
    name = str(schedule["metadata"]["name"])
    spec = copy.deepcopy(dict(target.get("spec") or {}))
    spec[_SPEC_KEY[kind]] = SCHEDULE_DELIVERY_PLACEHOLDER
    tmeta = target.get("metadata") or {}
    labels = {
        k: v
        for k, v in (tmeta.get("labels") or {}).items()
        if not k.endswith(("proompteng.ai/agent-run", "proompteng.ai/delivery-id"))
        and not k.startswith("schedules.proompteng.ai/")
    }
    labels.update(schedule_labels(name))
    labels.update(delivery_id_labels(SCHEDULE_DELIVERY_PLACEHOLDER))
    annotations = {
        k: v
        for k, v in (tmeta.get("annotations") or {}).items()
        if "proompteng.ai/" not in k and not k.startswith("kubectl.kubernetes.io/")
    }
    meta: dict[str, Any] = {"generateName": f"{dns_label(name, limit=_TEMPLATE_PREFIX)}-", "labels": labels}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": TARGET_KINDS[kind], "kind": kind, "metadata": meta, "spec": spec}


def parse_template(text: str | None) -> dict[str, Any]:
    if not text:
        raise TemplateError(f"the template has no {TEMPLATE_KEY}")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise TemplateError(f"{TEMPLATE_KEY} is not JSON: {err}") from None
    if not isinstance(doc, dict) or doc.get("kind") not in TARGET_KINDS:
        raise TemplateError(f"{TEMPLATE_KEY} must be an AgentRun or OrchestrationRun")
    if not isinstance(doc.get("spec"), dict):
        raise TemplateError(f"{TEMPLATE_KEY} has no spec")
    return doc


def _substitute(value: Any, replacement: str) -> Any:
    if isinstance(value, str):
        return value.replace(SCHEDULE_DELIVERY_PLACEHOLDER, replacement)
    if isinstance(value, list):
        return [_substitute(v, replacement) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, replacement) for k, v in value.items()}
    return value


def run_for_tick(
    template: Mapping[str, Any], namespace: str, schedule: str, tick: datetime
) -> dict[str, Any]:
    """The run for one tick: the template with the placeholder replaced by the delivery id everywhere in the
    spec (and by its label value in the label), the deterministic name, and the scheduled-time annotation."""
    kind = str(template["kind"])
    did = delivery_id(namespace, schedule, tick)
    meta = dict(template.get("metadata") or {})
    for key in _RUN_META_DROP:
        meta.pop(key, None)
    labels = dict(_substitute(meta.get("labels") or {}, label_value(did)))
    labels.update(schedule_labels(schedule))
    labels.update(delivery_id_labels(label_value(did)))
    annotations = dict(meta.get("annotations") or {})
    annotations[ANNOTATION_SCHEDULED_TIME] = truncate_to_minute(tick).strftime("%Y-%m-%dT%H:%M:%SZ")
    spec = _substitute(copy.deepcopy(dict(template.get("spec") or {})), did)
    spec[_SPEC_KEY[kind]] = did
    return {
        "apiVersion": TARGET_KINDS[kind],
        "kind": kind,
        "metadata": {
            **meta,
            "name": run_name(schedule, tick),
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec,
    }


# -- the CronJob ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CronJobInputs:
    image: str
    service_account: str | None
    owner_reference: Mapping[str, Any] | None


_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def build_cronjob(schedule: Mapping[str, Any], inputs: CronJobInputs) -> dict[str, Any]:
    """The CronJob `<schedule>-cron`. Its one container runs `jangar schedule fire --schedule NS/NAME`
    with the Schedule's ServiceAccount; the Job's name reaches it through the downward API."""
    meta = schedule["metadata"]
    ns, name = str(meta["namespace"]), str(meta["name"])
    spec = schedule.get("spec") or {}
    labels = schedule_labels(name)
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [
            {
                "name": CONTAINER_NAME,
                "image": inputs.image,
                "command": ["jangar"],
                "args": ["schedule", "fire", "--schedule", f"{ns}/{name}"],
                "env": [
                    {
                        "name": ENV_JOB_NAME,
                        "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['job-name']"}},
                    }
                ],
                "resources": {
                    "requests": {"cpu": "10m", "memory": "64Mi"},
                    "limits": {"memory": "256Mi"},
                },
            }
        ],
    }
    if inputs.service_account and _NAME_RE.match(inputs.service_account):
        pod_spec["serviceAccountName"] = inputs.service_account
    cron_spec: dict[str, Any] = {
        "schedule": str(spec.get("cron") or "").strip(),
        "concurrencyPolicy": spec.get("concurrencyPolicy") or DEFAULT_CONCURRENCY_POLICY,
        "suspend": bool(spec.get("suspend")),
        "successfulJobsHistoryLimit": _int_or(
            spec.get("successfulJobsHistoryLimit"), DEFAULT_SUCCESSFUL_HISTORY
        ),
        "failedJobsHistoryLimit": _int_or(spec.get("failedJobsHistoryLimit"), DEFAULT_FAILED_HISTORY),
        "jobTemplate": {
            "metadata": {"labels": dict(labels)},
            "spec": {
                "backoffLimit": 3,
                "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
            },
        },
    }
    if spec.get("timezone"):
        cron_spec["timeZone"] = spec["timezone"]
    if isinstance(spec.get("startingDeadlineSeconds"), int):
        cron_spec["startingDeadlineSeconds"] = spec["startingDeadlineSeconds"]
    cron_meta: dict[str, Any] = {"name": cronjob_name(name), "namespace": ns, "labels": labels}
    if inputs.owner_reference is not None:
        cron_meta["ownerReferences"] = [dict(inputs.owner_reference)]
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": cron_meta, "spec": cron_spec}


def _int_or(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default
