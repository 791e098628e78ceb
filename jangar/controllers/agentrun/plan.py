"""What one AgentRun reconcile pass does, as data: the output of `decide`, the input of `apply_plan`.

A plan is applied in a fixed order (see `apply.py`): the finalizer, then the children to create (the GitHub
App token Secret, the ConfigMaps and the Job), then the one status write, then the follow-ups that must come
after the outcome is recorded (deleting Jobs, Job TTL patches, Events, the run record). Deleting a run at
the end of its retention is the retention sweep's (`jangar.controllers.sweep`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jangar.controllers.runconditions import RunDetails
from jangar.scheduler import JobPlan
from jangar.vcs import AppTokenRequest

__all__ = ["NEEDS_ADMISSION", "RunPlan", "StatusUpdate"]


@dataclass(frozen=True)
class StatusUpdate:
    """The run's whole new status (`write_status` skips the write when only timestamps moved)."""

    phase: str
    details: RunDetails
    status: dict[str, Any]


@dataclass(frozen=True)
class RunPlan:
    """One pass, in apply order. Every field defaults to "nothing to do"."""

    add_finalizer: bool = False
    #: ask admission (`AdmissionGate.admit`) and decide again with its verdict
    needs_admission: bool = False
    #: give the run's admission reservation back (cancelled, deleted, or it could not start)
    release_admission: bool = False
    #: the run was admitted in this pass: a failure creating its children gives the reservation back
    admitted: bool = False
    app_token: AppTokenRequest | None = None
    #: the runner ServiceAccount to create in the run's namespace before the Job (runner_sa.py)
    ensure_service_account: str | None = None
    create: JobPlan | None = None
    #: Artifact objects of a run that just finished (created before the status write, adopted if there)
    artifacts: tuple[dict[str, Any], ...] = ()
    status: StatusUpdate | None = None
    #: Job names to delete (background propagation), after the status write
    delete_jobs: tuple[str, ...] = ()
    #: (Job name, ttlSecondsAfterFinished) to set, after the status write
    job_ttls: tuple[tuple[str, int], ...] = ()
    remove_finalizer: bool = False
    requeue_after: float | None = None
    #: (type, reason, message) Events beyond the phase-change one (e.g. a spec edited under a running
    #: runtime with enforcement off), emitted after the status write
    events: tuple[tuple[str, str, str], ...] = ()
    notes: tuple[str, ...] = field(default=())
    """Log lines worth keeping (e.g. a lost Job recreated), emitted by apply at info/warning level."""


NEEDS_ADMISSION = RunPlan(needs_admission=True)
