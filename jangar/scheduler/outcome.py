"""Job and Pods → what happened to the run.

The reference read only the Job and said `JobFailed` for everything (§3.5). Users need to know *why*: an
image that cannot be pulled (which never fails the Job by itself — the pod just waits for ever), a container
killed for memory, a deadline, the retry budget. `classify_job` reads the Job's conditions and its Pods'
container states and returns one `JobOutcome`; `missing_job_action` decides what to do when the Job is gone,
so a run is never left Running for ever (§12.12).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from jangar.conditions import parse_time
from jangar.scheduler.termination import parse_termination_message
from jangar.settings import ControllerTuning

__all__ = [
    "JobOutcome",
    "MissingJobAction",
    "classify_job",
    "container_report",
    "missing_job_action",
]

_MESSAGE_CAP = 1024

_DEFAULTS = ControllerTuning()
"""The grace periods (how long an image pull may back off, a Pod stay unschedulable or a Job have no Pod,
before the run fails instead of waiting forever as in the reference) are declared once, in
`jangar.settings.ControllerTuning`; these functions default to them."""

_IMAGE_PULL_REASONS = frozenset({"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"})
_CONFIG_REASONS = frozenset({"CreateContainerConfigError", "CreateContainerError"})

Phase = Literal["Pending", "Running", "Succeeded", "Failed"]


@dataclass(frozen=True)
class JobOutcome:
    """`phase` is the run's phase as far as this Job goes.

    * `reason`/`message`: for terminal phases the Failed/Succeeded condition's; for a Running job a pod
      problem worth a Warning (e.g. `ImagePullBackOff` inside its grace period), else "".
    * `stop_job`: the job cannot finish by itself (stuck image pull); the reconciler should delete it after
      recording the failure.
    * `requeue_after`: when to look again without waiting for an event (grace periods), or `None`.
    """

    phase: Phase
    reason: str = ""
    message: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    stop_job: bool = False
    requeue_after: float | None = None

    @property
    def terminal(self) -> bool:
        return self.phase in ("Succeeded", "Failed")


def _condition(job: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    for condition in (job.get("status") or {}).get("conditions") or ():
        if condition.get("type") == type_ and condition.get("status") == "True":
            found: Mapping[str, Any] = condition
            return found
    return None


def _container_states(pods: Iterable[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """(pod, containerStatus) pairs, init containers first, newest pod first."""
    ordered = sorted(
        pods, key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp") or ""), reverse=True
    )
    pairs: list[tuple[Mapping[str, Any], Mapping[str, Any]]] = []
    for pod in ordered:
        status = pod.get("status") or {}
        for key in ("initContainerStatuses", "containerStatuses"):
            pairs.extend((pod, cs) for cs in status.get(key) or ())
    return pairs


def _pod_name(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("name") or "pod")


def container_report(pods: Iterable[Mapping[str, Any]], container: str) -> dict[str, Any] | None:
    """`status.runner` of a finished run: `container`'s exit code and reason in its newest terminated Pod,
    the outputs it wrote to its termination message, or the plain text the kubelet kept instead.

    The agent (or jangar-runner around it) writes JSON to /dev/termination-log; with
    `FallbackToLogsOnError` a failing container that wrote nothing leaves its log tail, which is text.
    """
    for _pod, cs in _container_states(pods):
        terminated = (cs.get("state") or {}).get("terminated")
        if cs.get("name") != container or not isinstance(terminated, Mapping):
            continue
        report: dict[str, Any] = {}
        if isinstance(terminated.get("exitCode"), int):
            report["exitCode"] = terminated["exitCode"]
        if terminated.get("reason"):
            report["reason"] = str(terminated["reason"])
        parsed = parse_termination_message(terminated.get("message"))
        if parsed.outputs:
            report["outputs"] = parsed.outputs
        if parsed.artifacts:
            report["artifacts"] = parsed.artifacts
        if parsed.runner:
            report["runner"] = parsed.runner  # read by runner_summary, not stored as is
        if parsed.text:
            report["message"] = parsed.text[-_MESSAGE_CAP:]
        return report
    return None


def _failure_detail(message: Any) -> str:
    """What a failed container said: its plain-text termination message, or the `message` of a JSON one."""
    parsed = parse_termination_message(message if isinstance(message, str) else None)
    if parsed.text:
        return parsed.text[-_MESSAGE_CAP:]
    said = parsed.outputs.get("message")
    return str(said) if isinstance(said, str) else ""


def _termination(pods: Iterable[Mapping[str, Any]]) -> tuple[str, str] | None:
    """The most telling container termination: OOMKilled first, then any non-zero exit."""
    pairs = _container_states(pods)
    for pod, cs in pairs:
        for state_key in ("state", "lastState"):
            terminated = (cs.get(state_key) or {}).get("terminated") or {}
            if terminated.get("reason") == "OOMKilled":
                return "OOMKilled", (
                    f"container {cs.get('name')} in pod {_pod_name(pod)} was killed for exceeding its "
                    "memory limit (OOMKilled); raise workload.resources.limits.memory"
                )
    for pod, cs in pairs:
        terminated = (cs.get("state") or {}).get("terminated") or {}
        code = terminated.get("exitCode")
        if isinstance(code, int) and code != 0:
            said = _failure_detail(terminated.get("message"))
            detail = f": {said}" if said else ""
            return "ContainerFailed", (
                f"container {cs.get('name')} in pod {_pod_name(pod)} exited with code {code}{detail}"
            )
    return None


def _waiting_problem(pods: Iterable[Mapping[str, Any]]) -> tuple[str, str, Mapping[str, Any]] | None:
    for pod, cs in _container_states(pods):
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason in _IMAGE_PULL_REASONS or reason in _CONFIG_REASONS:
            detail = waiting.get("message") or ""
            image = cs.get("image") or ""
            text = f"pod {_pod_name(pod)} container {cs.get('name')}: {reason}"
            if reason in _IMAGE_PULL_REASONS and image:
                text += f" for image {image}"
            if detail:
                text += f" ({detail})"
            return str(reason), text, pod
    return None


def classify_job(
    job: Mapping[str, Any],
    pods: Iterable[Mapping[str, Any]] = (),
    *,
    now: datetime,
    image_pull_grace_seconds: float = _DEFAULTS.image_pull_grace_seconds,
    scheduling_grace_seconds: float = _DEFAULTS.scheduling_grace_seconds,
) -> JobOutcome:
    """Classify a Job (and its Pods, from the cache, by the run label) into a `JobOutcome`."""
    pods = list(pods)
    status = job.get("status") or {}
    started = parse_time(status.get("startTime"))

    complete = _condition(job, "Complete")
    succeeded = (status.get("succeeded") or 0) > 0 and _condition(job, "Failed") is None
    if complete is not None or succeeded:
        finished = (
            parse_time(status.get("completionTime"))
            or parse_time((complete or {}).get("lastTransitionTime"))
            or now
        )
        return JobOutcome("Succeeded", "Completed", "job completed", started, finished)

    failed = _condition(job, "Failed") or _condition(job, "FailureTarget")
    if failed is not None:
        job_reason = str(failed.get("reason") or "JobFailed")
        finished = parse_time(failed.get("lastTransitionTime")) or now
        detail = _termination(pods)
        if detail is not None and (detail[0] == "OOMKilled" or job_reason in ("BackoffLimitExceeded", "")):
            reason, message = detail
            if job_reason == "BackoffLimitExceeded" and reason != "OOMKilled":
                reason = job_reason
                message = f"job failed after exhausting its retries (backoffLimit); last: {detail[1]}"
            return JobOutcome("Failed", reason, message, started, finished)
        if job_reason == "DeadlineExceeded":
            deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
            message = f"job ran longer than its deadline ({deadline}s, activeDeadlineSeconds)"
        elif job_reason == "BackoffLimitExceeded":
            message = "job failed after exhausting its retries (backoffLimit)"
        else:
            message = str(failed.get("message") or "job failed")
        return JobOutcome("Failed", job_reason if job_reason else "JobFailed", message, started, finished)

    problem = _waiting_problem(pods)
    if problem is not None:
        reason, message, pod = problem
        since = parse_time((pod.get("metadata") or {}).get("creationTimestamp")) or started or now
        waited = (now - since).total_seconds()
        if waited >= image_pull_grace_seconds:
            return JobOutcome(
                "Failed",
                reason,
                f"{message}; gave up after {int(waited)}s",
                started,
                now,
                stop_job=True,
            )
        return JobOutcome(
            "Running", reason, message, started, requeue_after=max(1.0, image_pull_grace_seconds - waited)
        )

    for pod in pods:
        scheduled = next(
            (c for c in (pod.get("status") or {}).get("conditions") or () if c.get("type") == "PodScheduled"),
            None,
        )
        if scheduled and scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
            since = parse_time(scheduled.get("lastTransitionTime")) or now
            waited = (now - since).total_seconds()
            message = f"pod {_pod_name(pod)} is unschedulable: {scheduled.get('message') or 'no node fits'}"
            if waited >= scheduling_grace_seconds:
                return JobOutcome(
                    "Failed",
                    "Unschedulable",
                    f"{message}; gave up after {int(waited)}s",
                    started,
                    now,
                    stop_job=True,
                )
            return JobOutcome(
                "Running",
                "Unschedulable",
                message,
                started,
                requeue_after=max(1.0, scheduling_grace_seconds - waited),
            )

    if (status.get("active") or 0) > 0 or started is not None:
        return JobOutcome("Running", started_at=started)
    created = parse_time((job.get("metadata") or {}).get("creationTimestamp"))
    if not pods and created is not None:
        waited = (now - created).total_seconds()
        if waited >= scheduling_grace_seconds:
            return JobOutcome(
                "Failed",
                "PodsNotCreated",
                f"job created no pod in {int(waited)}s; see the Job's events (quota, admission, service account)",
                None,
                now,
                stop_job=True,
            )
        return JobOutcome("Pending", requeue_after=max(1.0, scheduling_grace_seconds - waited))
    return JobOutcome("Pending", started_at=started)


MissingJobAction = Literal["wait", "recreate", "fail"]


def missing_job_action(
    runtime_ref: Mapping[str, Any] | None,
    *,
    submitted_at: datetime | None,
    now: datetime,
    grace_seconds: float = _DEFAULTS.missing_job_grace_seconds,
) -> tuple[MissingJobAction, float | None]:
    """What to do when a Running run's Job is not in the cache.

    * observed before (`runtimeRef.jobObservedAt`): someone deleted it mid-run → `fail` (re-running an agent
      that may already have pushed commits is not safe).
    * never observed, within `grace_seconds` of submission: the cache is behind → `wait`, requeue after the rest.
    * never observed after the grace: the create was lost (e.g. a crash) → `recreate` (same name: idempotent).
    """
    if runtime_ref and runtime_ref.get("jobObservedAt"):
        return "fail", None
    if submitted_at is not None:
        elapsed = (now - submitted_at).total_seconds()
        if elapsed < grace_seconds:
            return "wait", grace_seconds - elapsed
    return "recreate", None
