"""Hand AgentRun snapshots to the Postgres run recorder without ever waiting for it.

`RunRecorder.record()` only appends to an in-memory buffer, so calling it from a reconcile is free; a
database outage never slows reconciling. Records are level-triggered (issue 12): every reconcile of a run,
terminal ones included, offers the run's current snapshot; the recorder skips one it already committed (no
Postgres round trip for an unchanged run) and the store upserts idempotently and never backwards. The
transition time comes from the status (`startedAt`, `finishedAt`, condition times), so re-recording the same
state after a restart finds the rows already there. So a crash, a full buffer or a database outage costs a
delay, never a record:

* `Offer.REFUSED` (buffer full, schema missing): the reconciler requeues the run after a random moment
  between `RECORD_RETRY_SECONDS` and `RECORD_REFUSED_SPREAD_SECONDS` and offers it again;
* a run about to be deleted (retention, or its finalizer about to be removed) waits until its record is
  committed (`Offer.RECORDED`), polling every `RECORD_RETRY_SECONDS`; a user's delete waits at most
  `RECORD_HOLD_DELETE_SECONDS` after its `deletionTimestamp`, so a database that is gone for good cannot
  keep a deleted run forever.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from jangar.api.contract import LABEL_ORCHESTRATION_RUN, LABEL_ORCHESTRATION_STEP, LABEL_PROVIDER, is_terminal
from jangar.conditions import find_condition, parse_time
from jangar.storage.events import JobRef, RecordEvent, RunEvent, TrackedRunEvent, VcsContext, source_version
from jangar.storage.recorder import Offer

log = structlog.get_logger("jangar.controllers.recording")

__all__ = [
    "RECORD_HOLD_DELETE_SECONDS",
    "RECORD_REFUSED_SPREAD_SECONDS",
    "RECORD_RETRY_SECONDS",
    "Offer",
    "RunRecorderProtocol",
    "provider_of",
    "record_run",
    "record_tracked_run",
    "retry_refused",
    "tracked_run_event",
]

RECORD_RETRY_SECONDS = 5.0
"""How soon a run whose record was refused (or is awaited before a delete) is offered again."""

RECORD_REFUSED_SPREAD_SECONDS = 30.0
"""The latest a refused record is offered again (`retry_refused` picks a moment up to this)."""

RECORD_HOLD_DELETE_SECONDS = 120.0
"""How long a deleted run's finalizer waits for its record to be committed, after `deletionTimestamp`."""


class RunRecorderProtocol(Protocol):
    """What the controllers need from `jangar.storage.RunRecorder`. A recorder that answers `None` cannot be
    waited for, so `None` counts as `Offer.RECORDED`."""

    def record(self, event: RecordEvent) -> Offer | None: ...


def _offer(recorder: RunRecorderProtocol, event: RecordEvent) -> Offer:
    return recorder.record(event) or Offer.RECORDED


def provider_of(
    run: Mapping[str, Any],
    jobs: Mapping[str, Mapping[str, Any]] = {},
    agent: Mapping[str, Any] | None = None,
) -> str | None:
    """The AgentProvider a run ran with: the provider label of its Job (what actually ran), else its
    Agent's `spec.providerRef` (the run did not get a Job), else the run's own label."""
    job_ref = str(((run.get("status") or {}).get("jobRef") or {}).get("name") or "")
    ordered = [jobs[job_ref]] if job_ref in jobs else []
    ordered += [job for name, job in sorted(jobs.items()) if name != job_ref]
    for job in ordered:
        label = ((job.get("metadata") or {}).get("labels") or {}).get(LABEL_PROVIDER)
        if label:
            return str(label)
    ref = ((agent or {}).get("spec") or {}).get("providerRef")
    name = ref.get("name") if isinstance(ref, Mapping) else ref
    if name:
        return str(name)
    label = ((run.get("metadata") or {}).get("labels") or {}).get(LABEL_PROVIDER)
    return str(label) if label else None


def _exit_code(status: Mapping[str, Any]) -> int | None:
    code = (status.get("runner") or {}).get("exitCode")
    return code if isinstance(code, int) and not isinstance(code, bool) and -(2**31) <= code < 2**31 else None


_PHASE_CONDITION = {"Succeeded": "Succeeded", "Failed": "Failed", "Cancelled": "Failed", "Queued": "Blocked"}


def _transition_time(run: Mapping[str, Any], phase: str) -> datetime:
    status = run.get("status") or {}
    if is_terminal(phase):
        at = parse_time(status.get("finishedAt"))
    elif phase == "Running":
        at = parse_time(status.get("startedAt"))
    else:
        cond = find_condition(status.get("conditions"), _PHASE_CONDITION.get(phase, "Progressing"))
        at = parse_time((cond or {}).get("lastTransitionTime"))
    return at or parse_time((run.get("metadata") or {}).get("creationTimestamp")) or datetime.now(UTC)


def _reason(status: Mapping[str, Any], phase: str) -> tuple[str | None, str | None]:
    for type_ in ("InvalidSpec", "Failed", "Succeeded", "Blocked"):
        cond = find_condition(status.get("conditions"), type_)
        if cond is not None and cond.get("status") == "True":
            return str(cond.get("reason") or "") or None, str(cond.get("message") or "") or None
    return None, None


def run_event(run: Mapping[str, Any], provider: str | None = None) -> RunEvent | None:
    """The recorder snapshot of `run` as it is now (None when it has no uid or phase yet); `provider` is
    the AgentProvider's name (`provider_of`), the run's provider label when not given."""
    meta = run.get("metadata") or {}
    status = run.get("status") or {}
    phase = status.get("phase")
    if not meta.get("uid") or not phase:
        return None
    spec = run.get("spec") or {}
    labels = meta.get("labels") or {}
    job_ref = status.get("jobRef") or {}
    vcs = status.get("vcs") or {}
    reason, message = _reason(status, str(phase))
    return RunEvent(
        uid=str(meta["uid"]),
        namespace=str(meta.get("namespace") or "default"),
        name=str(meta["name"]),
        at=_transition_time(run, str(phase)),
        phase=str(phase),
        reason=reason,
        message=message,
        agent=((spec.get("agentRef") or {}).get("name")),
        provider=provider or labels.get(LABEL_PROVIDER),
        implementation=((spec.get("implementationSpecRef") or {}).get("name")),
        runtime_type=((spec.get("runtime") or {}).get("type")),
        job=JobRef(
            str(job_ref["name"]), str(job_ref.get("namespace") or meta.get("namespace")), job_ref.get("uid")
        )
        if job_ref.get("name")
        else None,
        vcs=VcsContext(
            provider=vcs.get("provider"),
            repository=vcs.get("repository"),
            base_branch=vcs.get("baseBranch"),
            head_branch=vcs.get("headBranch"),
            mode=vcs.get("mode"),
        )
        if vcs
        else None,
        exit_code=_exit_code(status),
        started_at=parse_time(status.get("startedAt")),
        finished_at=parse_time(status.get("finishedAt")),
        source_version=source_version(meta.get("resourceVersion")),
    )


def record_run(
    recorder: RunRecorderProtocol | None, run: Mapping[str, Any], *, provider: str | None = None
) -> Offer:
    """Offer `run`'s current state; never raises (a record is history, not control).

    `Offer.RECORDED` without a recorder or for a run with nothing to record yet (no uid or phase), and when
    the snapshot cannot be built at all (a bug: retrying cannot help; it is logged).
    """
    if recorder is None:
        return Offer.RECORDED
    try:
        event = run_event(run, provider)
        return Offer.RECORDED if event is None else _offer(recorder, event)
    except Exception as exc:
        meta = run.get("metadata") or {}
        log.warning(
            "run not recorded", namespace=meta.get("namespace"), name=meta.get("name"), error=str(exc)
        )
        return Offer.RECORDED


# -- OrchestrationRuns and ToolRuns (issue 10) -------------------------------------------------------------

_TRACKED_REASON_CONDITIONS = ("InvalidSpec", "Failed", "Succeeded", "Waiting", "Warning", "BudgetExceeded")


def _tracked_reason(status: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The reason a record shows: the first true condition that explains the state (a failure, the end, a
    gate or signal being waited for, a warning)."""
    for type_ in _TRACKED_REASON_CONDITIONS:
        cond = find_condition(status.get("conditions"), type_)
        if cond is not None and cond.get("status") == "True":
            return str(cond.get("reason") or "") or None, str(cond.get("message") or "") or None
    return None, None


def tracked_run_event(kind: str, run: Mapping[str, Any]) -> TrackedRunEvent | None:
    """The recorder snapshot of an OrchestrationRun or ToolRun as it is now (None without uid or phase)."""
    meta = run.get("metadata") or {}
    status = run.get("status") or {}
    phase = status.get("phase")
    if not meta.get("uid") or not phase:
        return None
    spec = run.get("spec") or {}
    labels = meta.get("labels") or {}
    ref_key = "orchestrationRef" if kind == "OrchestrationRun" else "toolRef"
    ref = spec.get(ref_key)
    target = ref.get("name") if isinstance(ref, Mapping) else ref
    job_ref = status.get("jobRef") or {}
    reason, message = _tracked_reason(status)
    namespace = str(meta.get("namespace") or "default")
    return TrackedRunEvent(
        kind=kind,
        uid=str(meta["uid"]),
        namespace=namespace,
        name=str(meta["name"]),
        at=_transition_time(run, str(phase)),
        phase=str(phase),
        reason=reason,
        message=message,
        target=str(target) if target else None,
        delivery_id=str(spec["deliveryId"]) if spec.get("deliveryId") else None,
        parent_run=labels.get(LABEL_ORCHESTRATION_RUN),
        parent_step=labels.get(LABEL_ORCHESTRATION_STEP),
        job=JobRef(str(job_ref["name"]), str(job_ref.get("namespace") or namespace), job_ref.get("uid"))
        if job_ref.get("name")
        else None,
        started_at=parse_time(status.get("startedAt")),
        finished_at=parse_time(status.get("finishedAt")),
        source_version=source_version(meta.get("resourceVersion")),
    )


def record_tracked_run(recorder: RunRecorderProtocol | None, kind: str, run: Mapping[str, Any]) -> Offer:
    """Offer an OrchestrationRun's or ToolRun's current state; never raises (history, not control).
    The same answers as `record_run`."""
    if recorder is None:
        return Offer.RECORDED
    try:
        event = tracked_run_event(kind, run)
        return Offer.RECORDED if event is None else _offer(recorder, event)
    except Exception as exc:
        meta = run.get("metadata") or {}
        log.warning(
            "run not recorded",
            kind=kind,
            namespace=meta.get("namespace"),
            name=meta.get("name"),
            error=str(exc),
        )
        return Offer.RECORDED


def retry_refused(offer: Offer, requeue_after: float | None) -> float | None:
    """`requeue_after`, shortened to a moment between `RECORD_RETRY_SECONDS` and
    `RECORD_REFUSED_SPREAD_SECONDS` when the record was refused (offer it again). The spread is random so
    that thousands of refused runs during a long outage come back spread out, not in one wave every 5 s."""
    if offer is not Offer.REFUSED:
        return requeue_after
    delay = random.uniform(RECORD_RETRY_SECONDS, RECORD_REFUSED_SPREAD_SECONDS)
    return delay if requeue_after is None else min(requeue_after, delay)
