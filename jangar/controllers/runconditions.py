"""The AgentRun condition set: every type stated on every pass, derived from the phase and its details.

The reference set conditions but never cleared them (`InProgress` stayed True on a finished run, `Blocked`
after admission, §12.9). Here one function returns the whole owned set for a phase, so a status is always
internally consistent: a Succeeded run has InProgress=False, Blocked=False, Failed=False.

Owned types: Accepted, InvalidSpec, Blocked, InProgress, Succeeded, Failed, Warning, VcsSkipped (set when
VCS is resolved, at submission), BudgetExceeded (stated while a run that counts against a Budget
waits to start) (plus the derived
Ready/Progressing/Degraded from `compose_status`). `Succeeded` is Unknown until the run ends, so the
printer column reads Unknown/True/False.
"""

from __future__ import annotations

from dataclasses import dataclass

from jangar.api.contract import CONDITION_ARTIFACTS_TRUNCATED, CONDITION_BUDGET_EXCEEDED
from jangar.conditions import ConditionStatus
from jangar.controllers.status import Cond

__all__ = ["RunDetails", "run_conditions"]


@dataclass(frozen=True)
class RunDetails:
    """Why the run is in its phase: the reason/message of the deciding fact, and side facts."""

    reason: str
    message: str = ""
    invalid: bool = False  # the reason is a spec problem (InvalidSpec=True)
    accepted: bool = False  # a Job was created for it at some point
    warning: tuple[str, str] | None = None  # (reason, message)
    vcs_skipped: tuple[str, str] | None = None  # (reason, message); None with vcs_checked=False: keep as is
    vcs_checked: bool = False  # VCS was resolved this pass, so VcsSkipped gets a definitive value
    budget: tuple[ConditionStatus, str, str] | None = None  # BudgetExceeded (status, reason, message)
    #: ArtifactsTruncated (truncated, message), stated when a finished run reported artifacts
    artifacts_truncated: tuple[bool, str] | None = None
    #: Blocked=True outside the queue: (reason, message) of a hold (an unhealthy AgentProvider)
    blocked: tuple[str, str] | None = None


def _blocked(phase: str, d: RunDetails) -> Cond:
    """Blocked: True while Queued (admission) or held by `d.blocked`."""
    if d.blocked is not None:
        return Cond("Blocked", True, d.blocked[0], d.blocked[1])
    if phase == "Queued":
        return Cond("Blocked", True, d.reason, d.message)
    return Cond("Blocked", False, "NotBlocked")


def run_conditions(phase: str, d: RunDetails) -> list[Cond]:
    conds = [
        Cond("InvalidSpec", d.invalid, d.reason if d.invalid else "Valid", d.message if d.invalid else ""),
        Cond(
            "Accepted",
            d.accepted,
            "Submitted" if d.accepted else d.reason,
            "a Job was created for the run" if d.accepted else d.message,
        ),
        _blocked(phase, d),
        Cond(
            "InProgress",
            phase == "Running",
            "Running" if phase == "Running" else d.reason,
            d.message if phase == "Running" else "",
        ),
    ]
    if phase == "Succeeded":
        conds += [Cond("Succeeded", True, d.reason, d.message), Cond("Failed", False, d.reason)]
    elif phase in ("Failed", "Cancelled"):
        conds += [Cond("Succeeded", False, d.reason, d.message), Cond("Failed", True, d.reason, d.message)]
    else:
        conds += [Cond("Succeeded", "Unknown", phase or "Pending"), Cond("Failed", False, phase or "Pending")]
    if d.vcs_checked:
        if d.vcs_skipped is not None:
            conds.append(Cond("VcsSkipped", True, d.vcs_skipped[0], d.vcs_skipped[1]))
        else:
            conds.append(Cond("VcsSkipped", False, "NotSkipped"))
    if d.budget is not None:
        conds.append(Cond(CONDITION_BUDGET_EXCEEDED, d.budget[0], d.budget[1], d.budget[2]))
    if d.artifacts_truncated is not None:
        truncated, message = d.artifacts_truncated
        reason = "TooManyArtifacts" if truncated else "AllRecorded"
        conds.append(Cond(CONDITION_ARTIFACTS_TRUNCATED, truncated, reason, message))
    if d.warning is not None:
        conds.append(Cond("Warning", True, d.warning[0], d.warning[1]))
    else:
        conds.append(Cond("Warning", False, "None"))
    return conds
