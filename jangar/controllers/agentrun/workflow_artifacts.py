"""Artifacts of a `workflow` run's steps, as a pure function of the snapshot and the step plan.

A step attempt that ends for good in this pass (Succeeded, or Failed with no retry left; an attempt that
will be retried records nothing, the next one supersedes it) has its agent container's termination report
read like a single-Job run's (`container_report`): each named artifact becomes a `status.artifacts` entry
named `<step>/<artifact>` and, when present, an Artifact `<run>-<step>-<artifact>` (annotated with the step),
owned by the run, with the same location rules (`jangar.scheduler.artifacts`). The cap
`JANGAR_ARTIFACTS_MAX_PER_RUN` counts every step's entries together; a step whose entries do not all fit
sets `ArtifactsTruncated=True` (kept True by later steps).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jangar.api.contract import (
    ANNOTATION_ARTIFACT_NAME,
    ANNOTATION_ARTIFACT_STEP,
    CONDITION_ARTIFACTS_TRUNCATED,
)
from jangar.conditions import find_condition
from jangar.controllers.agentrun.snapshot import RunSnapshot
from jangar.scheduler.artifacts import run_artifacts
from jangar.scheduler.job import CONTAINER_NAME
from jangar.scheduler.outcome import container_report
from jangar.scheduler.workflow import WorkflowPlan

__all__ = ["StepArtifacts", "step_artifacts"]

_FINAL = ("Succeeded", "Failed")


@dataclass(frozen=True)
class StepArtifacts:
    #: the whole new `status.artifacts` (earlier steps' entries first)
    entries: list[dict[str, Any]] = field(default_factory=list)
    #: the Artifact manifests to create in this pass
    objects: list[dict[str, Any]] = field(default_factory=list)
    #: `RunDetails.artifacts_truncated`, or None to leave the condition as it is
    truncated: tuple[bool, str] | None = None


def step_artifacts(snap: RunSnapshot, run: Mapping[str, Any], wp: WorkflowPlan) -> StepArtifacts | None:
    """None when no step ended for good in this pass with reported artifacts."""
    ended = set(wp.finished_jobs)
    status = run.get("status") or {}
    entries: list[dict[str, Any]] = [dict(e) for e in status.get("artifacts") or () if isinstance(e, Mapping)]
    objects: list[dict[str, Any]] = []
    cfg = snap.settings.artifacts
    reported = kept = 0
    steps: list[str] = []
    for step in wp.steps:
        job = (step.get("jobRef") or {}).get("name")
        if job not in ended or step.get("phase") not in _FINAL:
            continue
        report = container_report(snap.pods.get(str(job), ()), CONTAINER_NAME) or {}
        listed = report.get("artifacts")
        if not isinstance(listed, list):
            continue
        name = str(step.get("name"))
        named = [
            {**e, "name": f"{name}/{e['name']}"}
            for e in listed
            if isinstance(e, Mapping) and isinstance(e.get("name"), str) and e["name"]
        ]
        if not named:
            continue
        room = max(0, cfg.max_per_run - len(entries))
        got = run_artifacts(run, named, limit=room, ttl_days=cfg.default_ttl_days)
        for obj in got.objects:
            annotations = obj["metadata"]["annotations"]
            annotations[ANNOTATION_ARTIFACT_NAME] = annotations[ANNOTATION_ARTIFACT_NAME].partition("/")[2]
            annotations[ANNOTATION_ARTIFACT_STEP] = name
        entries.extend(got.entries)
        objects.extend(got.objects)
        reported += got.reported
        kept += len(got.entries)
        steps.append(name)
    if not steps:
        return None
    which = ", ".join(steps)
    if kept < reported:
        message = (
            f"step {which}: {kept} of {reported} reported artifacts recorded, {len(entries)} in all "
            "(JANGAR_ARTIFACTS_MAX_PER_RUN)"
        )
        truncated: tuple[bool, str] | None = (True, message)
    else:
        old = find_condition(status.get("conditions"), CONDITION_ARTIFACTS_TRUNCATED)
        already = old is not None and old.get("status") == "True"
        truncated = None if already else (False, f"{len(entries)} reported artifacts recorded")
    return StepArtifacts(entries, objects, truncated)
