"""The controllers' audit events (issue 13, docs/audit.md): admission and idempotency decisions of the
AgentRun controller, step submissions and approval decisions of the OrchestrationRun controller.

Emitted from the reconcile that made the decision, before its writes, so an event is sent at least once
(a pass retried after a conflict may send it again); a decision repeated by a level-triggered re-reconcile
(a run still Queued) is not: each helper returns an event only for a change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jangar.admission import Admit, Rejection, Verdict, Waiting
from jangar.api.contract import LABEL_ORCHESTRATION_STEP, Phase
from jangar.audit import AuditEvent, AuditSink, audit_run

__all__ = ["admission_event", "approval_event", "emit", "key_event", "step_event"]

SOURCE = "controller"


def emit(sink: AuditSink | None, event: AuditEvent | None) -> None:
    """Hand `event` to `sink` (either may be None: nothing to do)."""
    if sink is not None and event is not None:
        sink.emit(event)


def admission_event(run: Mapping[str, Any], verdict: Verdict | object) -> AuditEvent | None:
    """The admission decision about `run`: rejected, held (on entering the queue) or admitted."""
    status = run.get("status") or {}
    if isinstance(verdict, Rejection):
        return audit_run(run, "admission.decision", source=SOURCE, decision="rejected", reason=verdict.reason)
    if isinstance(verdict, Waiting):
        if status.get("phase") == Phase.QUEUED:
            return None  # still waiting: the hold was audited when the run entered the queue
        return audit_run(
            run,
            "admission.decision",
            source=SOURCE,
            decision="held",
            reason=verdict.reason,
            detail={"scope": str(verdict.scope), "position": str(verdict.position)},
        )
    if isinstance(verdict, Admit):
        return audit_run(run, "admission.decision", source=SOURCE, decision="admitted", reason="Admitted")
    return None


def key_event(run: Mapping[str, Any], reason: str) -> AuditEvent:
    """A run refused because another run holds (or used) its idempotency key."""
    return audit_run(run, "idempotency.decision", source=SOURCE, decision="rejected", reason=reason)


def step_event(parent: Mapping[str, Any], child: Mapping[str, Any]) -> AuditEvent:
    """An OrchestrationRun created a step child (AgentRun, ToolRun or OrchestrationRun)."""
    meta = parent.get("metadata") or {}
    labels = (child.get("metadata") or {}).get("labels") or {}
    detail = {"orchestrationRun": str(meta.get("name") or "")}
    step = labels.get(LABEL_ORCHESTRATION_STEP)
    if step:
        detail["step"] = str(step)
    return audit_run(child, "orchestrationrun.step.submit", source=SOURCE, decision="accepted", detail=detail)


def approval_event(run: Mapping[str, Any], reason: str) -> AuditEvent | None:
    """An approval gate's decision, from the OrchestrationRun's planned Event reason."""
    decision = {"ApprovalApproved": "approved", "ApprovalRejected": "rejected"}.get(reason)
    if decision is None:
        return None
    return audit_run(run, "approval.decision", source=SOURCE, decision=decision, reason=reason)
