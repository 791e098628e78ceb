"""Which runner Pods are runtime debris, and which of them one sweep pass deletes (issue 13; drift row 19).

A runner Pod is one jangar's Job template made: labelled `agents.proompteng.ai/agent-run` and
`app.kubernetes.io/managed-by: jangar`. It is debris when it finished (phase Succeeded or Failed) at least
`JANGAR_RUNTIME_DEBRIS_CLEANUP_MIN_AGE_SECONDS` ago and its Job is gone: no cached Job of that name, or one
with another uid than the Pod's controller reference (deleted and created again). Owner references and
background propagation remove almost every runner Pod with its Job; what is left comes from a Job deleted
with `--cascade=orphan` (the garbage collector then drops the Pod's owner reference, so the Job's name is
read from the Job controller's `job-name` label) or from a garbage collector that was down.

`JANGAR_RUNTIME_DEBRIS_CLEANUP_MODE`: `disabled` finds nothing, `report` finds (the sweeper counts and
announces each Pod once) and deletes nothing, `delete` also deletes up to
`JANGAR_RUNTIME_DEBRIS_CLEANUP_MAX_DELETES_PER_NAMESPACE` per namespace per pass, oldest first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jangar.api.contract import LABEL_JOB_NAME, LABEL_MANAGED_BY, LABEL_RUN, MANAGED_BY
from jangar.conditions import parse_time
from jangar.scheduler.retention import ObjectKey, capped, key_of
from jangar.settings import Settings

__all__ = ["LABEL_BATCH_JOB_NAME", "DebrisPlan", "finished_at", "is_runner_pod", "plan_debris"]

LABEL_BATCH_JOB_NAME = "batch.kubernetes.io/job-name"
"""The Job controller's newer spelling of `job-name` (both are set since Kubernetes 1.27)."""

_FINISHED_PHASES = frozenset({"Succeeded", "Failed"})


@dataclass(frozen=True)
class DebrisPlan:
    #: every orphaned runner Pod old enough, oldest first (empty when the mode is `disabled`)
    found: tuple[ObjectKey, ...] = ()
    #: those to delete in this pass (mode `delete` only), at most the cap per namespace
    deletes: tuple[ObjectKey, ...] = ()


def is_runner_pod(pod: Mapping[str, Any]) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(LABEL_RUN)) and labels.get(LABEL_MANAGED_BY) == MANAGED_BY


def finished_at(pod: Mapping[str, Any]) -> datetime | None:
    """When the Pod's last container ended; else its start, else its creation (a Pod that failed before
    any container ran has no termination time)."""
    status = pod.get("status") or {}
    ends = [
        parse_time(((c.get("state") or {}).get("terminated") or {}).get("finishedAt"))
        for key in ("containerStatuses", "initContainerStatuses")
        for c in status.get(key) or ()
        if isinstance(c, Mapping)
    ]
    known = [t for t in ends if t is not None]
    if known:
        return max(known)
    return parse_time(status.get("startTime")) or parse_time(
        (pod.get("metadata") or {}).get("creationTimestamp")
    )


def _job_of(pod: Mapping[str, Any]) -> tuple[str, str | None] | None:
    """(Job name, Job uid if the Pod still names it) from the controller reference, else the labels."""
    meta = pod.get("metadata") or {}
    for ref in meta.get("ownerReferences") or ():
        if ref.get("kind") == "Job" and ref.get("controller") and ref.get("name"):
            return str(ref["name"]), (str(ref["uid"]) if ref.get("uid") else None)
    labels = meta.get("labels") or {}
    name = labels.get(LABEL_BATCH_JOB_NAME) or labels.get(LABEL_JOB_NAME)
    return (str(name), None) if name else None


def _job_gone(pod: Mapping[str, Any], jobs: Mapping[tuple[str, str], str]) -> bool:
    job = _job_of(pod)
    if job is None:
        return False  # not a Job's Pod as far as we can tell: never ours to judge
    name, uid = job
    cached = jobs.get((str((pod.get("metadata") or {}).get("namespace") or ""), name))
    return cached is None or (uid is not None and cached != uid)


def plan_debris(
    pods: Iterable[Mapping[str, Any]], jobs: Iterable[Mapping[str, Any]], now: datetime, settings: Settings
) -> DebrisPlan:
    """Pure: the orphaned runner Pods among `pods` (cached), given the cached `jobs` of the same scope."""
    debris = settings.runtime_debris
    if debris.mode == "disabled":
        return DebrisPlan()
    job_uids: dict[tuple[str, str], str] = {}
    for job in jobs:
        meta = job.get("metadata") or {}
        job_uids[(str(meta.get("namespace") or ""), str(meta.get("name")))] = str(meta.get("uid") or "")
    found: list[tuple[float, ObjectKey]] = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp") or not is_runner_pod(pod):
            continue
        if (pod.get("status") or {}).get("phase") not in _FINISHED_PHASES or not _job_gone(pod, job_uids):
            continue
        ended, key = finished_at(pod), key_of(pod)
        if ended is None or key is None:
            continue
        age = (now - ended).total_seconds()
        if age >= debris.min_age_seconds:
            found.append((-age, key))  # oldest first
    ordered = tuple(key for _, key in sorted(found))
    if debris.mode != "delete":
        return DebrisPlan(found=ordered)
    deletes, _ = capped(found, debris.max_deletes_per_namespace)
    return DebrisPlan(found=ordered, deletes=deletes)
