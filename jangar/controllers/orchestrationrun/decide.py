"""The OrchestrationRun decision: `decide(snapshot) -> OrchestrationRunPlan`, pure and level-triggered.

Each pass decides from scratch, from the snapshot only (reference §6.2, its weak points fixed):

1. a finished run owns no unfinished child (a child left running is cancelled);
2. no Orchestration → held `Pending` (`InvalidSpec=True/MissingOrchestration`) for the reference grace
   from the run's creation (the Orchestration index wakes it when it appears), then Failed; an invalid
   definition (`jangar.scheduler.orchestration.validate_definition`) fails the run with
   `InvalidSpec=True/<reason>`;
3. the steps are walked in dependency order (Kahn, ties by spec order); a step whose dependencies all
   succeeded starts — in the same pass as the step that unblocked it, so independent steps start together.
   A step attempt is a child (AgentRun, ToolRun, OrchestrationRun) named `<run>-<step>-<attempt>`
   (DNS-safe), labelled with the run and step and owned by the run (controller reference); a child that
   already exists with that name, or a later attempt's child (a lost status write), is adopted, never
   duplicated. Gates and waits have no child: they wait for a SignalDelivery. Checkpoint and MemoryOp
   succeed at once;
4. a failed attempt with attempts left becomes `Retrying` with `nextRetryAt` (`retry_backoff`: the
   workflow runtime's exponential, capped backoff) and the pass asks to be requeued at that time; an
   attempt running past the step's `timeoutSeconds` has its child cancelled and fails with `StepTimedOut`;
5. before its first step, the run's Budget (`budgetRef`, else the Orchestration's `policies.budgetRef`)
   must allow it: exceeded → `Pending` with `BudgetExceeded=True` (a Budget change wakes it), missing →
   `MissingBudget` for the reference grace, then Failed; every child carries that Budget in its own
   `spec.budgetRef` (the children are what a Budget counts);
6. the run's phase: a step failed for good → Failed (`StepFailed`, `RetriesExhausted` or
   `ApprovalRejected`; the other running children are cancelled); cancel annotation → children cancelled,
   Cancelled once none is left running; all steps succeeded → Succeeded; else Running.

Every status states the full condition set (`_conditions`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from jangar.api.contract import (
    ANNOTATION_CANCEL,
    ANNOTATION_ORCHESTRATION_ANCESTRY,
    ANNOTATION_ORCHESTRATION_ATTEMPT,
    CONDITION_BUDGET_EXCEEDED,
    LABEL_MANAGED_BY,
    LABEL_ORCHESTRATION_RUN,
    LABEL_ORCHESTRATION_STEP,
    MANAGED_BY,
    REASON_RECURSIVE_SUB_ORCHESTRATION,
    Phase,
    approval_delivery_id,
    is_cancel_requested,
    is_terminal,
)
from jangar.api.refs import AGENTRUNS, ORCHESTRATIONRUNS, TOOLRUNS
from jangar.conditions import ConditionStatus, find_condition, format_time, parse_time
from jangar.controllers.budget_hold import BUDGET_RECHECK_SECONDS
from jangar.controllers.orchestrationrun.plan import (
    ChildCancel,
    ChildCreate,
    OrchestrationRunPlan,
    PlannedEvent,
)
from jangar.controllers.orchestrationrun.snapshot import OrchestrationRunSnapshot, signal_wait_keys
from jangar.controllers.status import Cond, compose_status
from jangar.runtime import controllerutil
from jangar.scheduler.naming import dns_label, label_value
from jangar.scheduler.orchestration import (
    IMMEDIATE_KINDS,
    orchestration_steps,
    render_inputs,
    step_ref,
    topological_order,
    validate_definition,
)
from jangar.scheduler.workflow import retry_backoff

__all__ = [
    "CHILD_KIND",
    "FOREIGN_CHILD_REQUEUE_SECONDS",
    "MISSING_POLICY_REQUEUE_SECONDS",
    "ancestry",
    "child_name",
    "decide",
]

#: step kind → the kind of the child it creates
CHILD_KIND = {"AgentRun": "AgentRun", "ToolRun": "ToolRun", "SubOrchestration": "OrchestrationRun"}
_CHILD_REFS = {"AgentRun": AGENTRUNS, "ToolRun": TOOLRUNS, "OrchestrationRun": ORCHESTRATIONRUNS}
FOREIGN_CHILD_REQUEUE_SECONDS = 5.0
MISSING_POLICY_REQUEUE_SECONDS = 30.0
_DONE = frozenset({"Succeeded", "Failed", "Cancelled"})
_NOT_RETRIED = frozenset({"MissingOutput", "ApprovalRejected", REASON_RECURSIVE_SUB_ORCHESTRATION})
_APPROVE = frozenset({"approve", "approved", "allow", "allowed"})
_REJECT = frozenset({"reject", "rejected", "deny", "denied"})


def child_name(run: str, step: str, attempt: int) -> str:
    """`<run>-<step>-<attempt>`, a DNS-1123 label (long names shortened with a stable hash)."""
    return dns_label(run, step, str(attempt))


def ancestry(run: Mapping[str, Any]) -> list[str]:
    """The Orchestrations of the run's ancestor runs, root first (`ANNOTATION_ORCHESTRATION_ANCESTRY`)."""
    raw = ((run.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_ORCHESTRATION_ANCESTRY)
    return [n.strip() for n in raw.split(",") if n.strip()] if isinstance(raw, str) else []


def _orchestration_of(run: Mapping[str, Any]) -> str | None:
    ref = (run.get("spec") or {}).get("orchestrationRef")
    name = ref.get("name") if isinstance(ref, Mapping) else None
    return name if isinstance(name, str) and name else None


def _lineage(run: Mapping[str, Any]) -> list[str]:
    """The run's ancestry followed by its own Orchestration: what a child run is annotated with."""
    own = _orchestration_of(run)
    return [*ancestry(run), *([own] if own else [])]


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else 0


def _attempt_of(child: Mapping[str, Any]) -> int:
    raw = ((child.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_ORCHESTRATION_ATTEMPT)
    return int(raw) if isinstance(raw, str) and raw.isdigit() else 0


def _decision(value: Any) -> str | None:
    text = str(value or "").strip().lower()
    return "approved" if text in _APPROVE else "rejected" if text in _REJECT else None


def _outputs_of(kind: str, child: Mapping[str, Any]) -> dict[str, Any]:
    status = child.get("status") or {}
    if kind == "AgentRun":
        found = (status.get("runner") or {}).get("outputs")
    elif kind == "ToolRun":
        found = status.get("outputs")
    else:  # a sub-orchestration's outputs: its steps' outputs by step name
        found = {
            str(e.get("name")): e["outputs"]
            for e in status.get("stepStatuses") or ()
            if isinstance(e, Mapping) and isinstance(e.get("outputs"), Mapping) and e["outputs"]
        }
    return dict(found) if isinstance(found, Mapping) else {}


def _failure_of(child: Mapping[str, Any]) -> str:
    status = child.get("status") or {}
    failed = find_condition(status.get("conditions"), "Failed") or {}
    reason = failed.get("reason") or status.get("phase") or "Failed"
    message = failed.get("message") or ""
    return f"{reason}: {message}" if message else str(reason)


@dataclass
class _Pass:
    """The mutable state of one walk over the steps."""

    snap: OrchestrationRunSnapshot
    steps: dict[str, Mapping[str, Any]]
    entries: dict[str, dict[str, Any]]
    parameters: dict[str, str]
    creates: list[ChildCreate] = field(default_factory=list)
    cancels: list[ChildCancel] = field(default_factory=list)
    events: list[PlannedEvent] = field(default_factory=list)
    wakeups: list[float] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def now(self) -> datetime:
        return self.snap.now

    def wake_at(self, moment: datetime | None) -> None:
        if moment is not None:
            self.wakeups.append(max(0.0, (moment - self.now).total_seconds()))

    def set_phase(
        self, entry: dict[str, Any], phase: str, reason: str | None = None, message: str = ""
    ) -> None:
        if entry.get("phase") != phase:
            entry["phase"] = phase
            entry["lastTransitionTime"] = format_time(self.now)
        if reason is None:
            entry.pop("reason", None)
        else:
            entry["reason"] = reason
        entry["message"] = message
        if phase in _DONE:
            entry.setdefault("finishedAt", format_time(self.now))
            entry.pop("waitingFor", None)
            entry.pop("nextRetryAt", None)

    def outputs(self) -> dict[str, Mapping[str, Any] | None]:
        return {n: e.get("outputs") for n, e in self.entries.items() if e.get("phase") == "Succeeded"}

    def child_of(self, entry: Mapping[str, Any]) -> Mapping[str, Any] | None:
        ref = entry.get("resourceRef") or {}
        kind, name = ref.get("kind"), ref.get("name")
        if not kind or not name:
            return None
        return self.snap.children.get((str(kind), str(name)))

    def cancel_child(self, entry: Mapping[str, Any]) -> bool:
        """Ask the step's live child to stop; True while it has not finished."""
        child = self.child_of(entry)
        if child is None or is_terminal((child.get("status") or {}).get("phase")):
            return False
        if not is_cancel_requested(child):
            ref = entry["resourceRef"]
            self.cancels.append(ChildCancel(str(ref["kind"]), str(ref["name"])))
        return True


# -- the step machine ------------------------------------------------------------------------------


def _start(p: _Pass, name: str, entry: dict[str, Any], attempt: int) -> None:
    """Start attempt `attempt` of step `name` (inputs rendered; child planned, or adopted if it exists)."""
    step = p.steps[name]
    kind = str(step.get("kind"))
    entry["attempt"] = attempt
    entry["startedAt"] = format_time(p.now)
    for stale in ("finishedAt", "nextRetryAt", "resourceRef", "waitingFor", "outputs", "approval"):
        entry.pop(stale, None)
    rendered = render_inputs(step, p.parameters, p.outputs())
    if rendered.missing:
        refs = ", ".join("{{" + m + "}}" for m in rendered.missing)
        _attempt_failed(p, name, entry, "MissingOutput", f"input references resolved to nothing: {refs}")
        return
    if kind in IMMEDIATE_KINDS:
        entry["outputs"] = rendered.values
        p.set_phase(entry, "Succeeded", None, f"{kind} step: no work to do")
        return
    if kind == "ApprovalGate":
        policy = step_ref(step, "policyRef") or ""
        entry["waitingFor"] = {"deliveryId": approval_delivery_id(p.snap.name, name), "policy": policy}
        p.set_phase(
            entry, "Running", "AwaitingApproval", f"waiting for a decision under ApprovalPolicy {policy}"
        )
        _observe(p, name, entry)
        return
    if kind == "SignalWait":
        signal, delivery = signal_wait_keys(step)
        waiting = {k: v for k, v in (("signal", signal), ("deliveryId", delivery)) if v}
        entry["waitingFor"] = waiting
        what = " and ".join(f"{k} {v}" for k, v in waiting.items())
        p.set_phase(entry, "Running", "AwaitingSignal", f"waiting for a SignalDelivery with {what}")
        _observe(p, name, entry)
        return
    child_kind = CHILD_KIND[kind]
    if child_kind == "OrchestrationRun":
        target = step_ref(step, "orchestrationRef") or ""
        lineage = _lineage(p.snap.run)
        if target in lineage:
            chain = " -> ".join([*lineage, target])
            _attempt_failed(
                p,
                name,
                entry,
                REASON_RECURSIVE_SUB_ORCHESTRATION,
                f"orchestration {target} is already running above this step ({chain})",
            )
            return
    child = child_name(p.snap.name, name, attempt)
    entry["resourceRef"] = {
        "apiVersion": _CHILD_REFS[child_kind].api_version,
        "kind": child_kind,
        "name": child,
        "namespace": p.snap.namespace,
    }
    p.set_phase(entry, "Running", "Submitted", f"{child_kind} {child} created")
    if (child_kind, child) in p.snap.children:
        _observe(p, name, entry)
        return
    _create(p, name, step, child_kind, child, attempt, rendered.values)


def _create(
    p: _Pass,
    name: str,
    step: Mapping[str, Any],
    kind: str,
    child: str,
    attempt: int,
    inputs: Mapping[str, str],
) -> None:
    if (kind, child) in p.snap.taken:
        p.warnings.append(
            (
                "ChildNameTaken",
                f"step {name}: {kind} {child} exists but belongs to another object; waiting for it to go",
            )
        )
        p.wake_at(p.now + timedelta(seconds=FOREIGN_CHILD_REQUEUE_SECONDS))
        return
    p.creates.append(ChildCreate(kind, _manifest(p, name, step, kind, child, attempt, inputs)))
    p.wake_at(p.now + timedelta(seconds=p.snap.tuning.missing_job_grace_seconds))


def _manifest(
    p: _Pass,
    step_name: str,
    step: Mapping[str, Any],
    child_kind: str,
    name: str,
    attempt: int,
    inputs: Mapping[str, str],
) -> dict[str, Any]:
    run = p.snap.run
    parameters = {**p.parameters, **inputs}
    spec: dict[str, Any]
    if child_kind == "AgentRun":
        runtime = step.get("runtime")
        if isinstance(runtime, Mapping):
            runtime = {"type": "job", **runtime}
        else:
            runtime = {"type": (inputs.get("runtime") or "job")}
        spec = {
            "agentRef": {"name": step_ref(step, "agentRef")},
            "parameters": parameters,
            "runtime": runtime,
        }
        impl = step_ref(step, "implementationSpecRef")
        if impl:
            spec["implementationSpecRef"] = {"name": impl}
        elif isinstance(step.get("implementation"), Mapping):
            spec["implementation"] = dict(step["implementation"])
        for key in ("memoryRef", "secrets", "workload", "vcsRef", "vcsPolicy", "goal"):
            if step.get(key) is not None:
                spec[key] = step[key]
    elif child_kind == "ToolRun":
        spec = {"toolRef": {"name": step_ref(step, "toolRef")}, "parameters": parameters}
    else:
        spec = {"orchestrationRef": {"name": step_ref(step, "orchestrationRef")}, "parameters": parameters}
    if p.snap.budget_name:
        spec["budgetRef"] = {"name": p.snap.budget_name}
    ref = _CHILD_REFS[child_kind]
    return {
        "apiVersion": ref.api_version,
        "kind": child_kind,
        "metadata": {
            "name": name,
            "namespace": p.snap.namespace,
            "labels": {
                LABEL_ORCHESTRATION_RUN: label_value(p.snap.name),
                LABEL_ORCHESTRATION_STEP: label_value(step_name),
                LABEL_MANAGED_BY: MANAGED_BY,
            },
            "annotations": {
                ANNOTATION_ORCHESTRATION_ATTEMPT: str(attempt),
                **(
                    {ANNOTATION_ORCHESTRATION_ANCESTRY: ",".join(_lineage(run))}
                    if child_kind == "OrchestrationRun"
                    else {}
                ),
            },
            "ownerReferences": [controllerutil.owner_reference(dict(run), ORCHESTRATIONRUNS)],
        },
        "spec": spec,
    }


def _attempt_failed(p: _Pass, name: str, entry: dict[str, Any], reason: str, message: str) -> None:
    step = p.steps[name]
    attempt = max(1, _int(entry.get("attempt")))
    max_attempts = _int(step.get("retries")) + 1
    if reason not in _NOT_RETRIED and attempt < max_attempts:
        delay = retry_backoff(step, attempt)
        p.events.append(
            PlannedEvent(
                "Warning",
                "StepFailed",
                f"step {name} attempt {attempt} failed ({reason}): {message}; retrying in {delay:g}s",
            )
        )
        for stale in ("waitingFor", "finishedAt"):
            entry.pop(stale, None)
        p.set_phase(entry, "Retrying", reason, message)
        retry_at = p.now + timedelta(seconds=delay)
        entry["nextRetryAt"] = format_time(retry_at)
        if delay <= 0:
            _start(p, name, entry, attempt + 1)
        else:
            p.wake_at(retry_at)
        return
    final = "RetriesExhausted" if max_attempts > 1 and reason not in _NOT_RETRIED else reason
    detail = f"{reason}: {message}" if final != reason else message
    if final == "RetriesExhausted":
        detail = f"failed after {max_attempts} attempts; last: {reason}: {message}"
    p.set_phase(entry, "Failed", final, detail)
    p.events.append(PlannedEvent("Warning", "StepFailed", f"step {name} failed: {final}: {detail}"))


def _deadline(p: _Pass, name: str, entry: Mapping[str, Any]) -> datetime | None:
    timeout = _int(p.steps[name].get("timeoutSeconds"))
    started = parse_time(entry.get("startedAt"))
    return started + timedelta(seconds=timeout) if timeout and started else None


def _observe(p: _Pass, name: str, entry: dict[str, Any]) -> None:
    """A Running step: look at its child, its decision or its deliveries."""
    kind = str(p.steps[name].get("kind"))
    deadline = _deadline(p, name, entry)
    if kind == "ApprovalGate":
        if _gate(p, name, entry):
            return
    elif kind == "SignalWait":
        if _signal(p, name, entry):
            return
    elif kind in CHILD_KIND and _child(p, name, entry):
        return
    if deadline is not None:
        if p.now >= deadline:
            p.cancel_child(entry)
            timeout = _int(p.steps[name].get("timeoutSeconds"))
            _attempt_failed(
                p, name, entry, "StepTimedOut", f"attempt ran longer than timeoutSeconds={timeout}"
            )
            return
        p.wake_at(deadline)


def _child(p: _Pass, name: str, entry: dict[str, Any]) -> bool:
    """Follow the step's child; True when the step left Running (or must not time out this pass)."""
    ref = entry.get("resourceRef") or {}
    kind = str(ref.get("kind") or CHILD_KIND[str(p.steps[name].get("kind"))])
    child = p.child_of(entry)
    if child is None:
        if ref.get("uid"):  # seen, then gone before it finished
            _attempt_failed(
                p, name, entry, f"{_step_kind_word(kind)}Missing", f"{kind} {ref.get('name')} disappeared"
            )
            return True
        # Not in the cache yet (just created, or deleted before we saw it): create it again — idempotent,
        # the create adopts an existing object with that name.
        step = p.steps[name]
        rendered = render_inputs(step, p.parameters, p.outputs())
        attempt = max(1, _int(entry.get("attempt")))
        _create(p, name, step, kind, str(ref.get("name")), attempt, rendered.values)
        return False
    uid = (child.get("metadata") or {}).get("uid")
    if uid and ref.get("uid") != uid:
        entry["resourceRef"] = {**ref, "uid": uid}
    phase = (child.get("status") or {}).get("phase")
    if phase == Phase.SUCCEEDED:
        entry["outputs"] = _outputs_of(kind, child)
        p.set_phase(entry, "Succeeded", None, f"{kind} {ref.get('name')} succeeded")
        return True
    if phase in (Phase.FAILED, Phase.CANCELLED):
        _attempt_failed(
            p,
            name,
            entry,
            f"{_step_kind_word(kind)}Failed",
            f"{kind} {ref.get('name')}: {_failure_of(child)}",
        )
        return True
    if entry.get("reason") == "Submitted" or entry.get("message", "").endswith("created"):
        p.set_phase(entry, "Running", "Running", f"{kind} {ref.get('name')} is {phase or 'Pending'}")
    elif phase and entry.get("message") != f"{kind} {ref.get('name')} is {phase}":
        entry["message"] = f"{kind} {ref.get('name')} is {phase}"
    return False


def _step_kind_word(child_kind: str) -> str:
    return "SubOrchestration" if child_kind == "OrchestrationRun" else child_kind


def _gate(p: _Pass, name: str, entry: dict[str, Any]) -> bool:
    policy_name = step_ref(p.steps[name], "policyRef") or ""
    found = _first_decision(p, name, policy_name)
    if found is not None:
        delivery, decision = found
        payload = (delivery.get("spec") or {}).get("payload") or {}
        by = str(payload.get("decidedBy") or "unknown")
        at = str((delivery.get("metadata") or {}).get("creationTimestamp") or format_time(p.now))
        why = str(payload.get("reason") or "")
        _decided(
            p, name, entry, decision, by, at, why, defaulted=False, delivery=str(delivery["metadata"]["name"])
        )
        return True
    policy = p.snap.policies.get(policy_name)
    if policy is None:
        p.warnings.append(("MissingApprovalPolicy", f"step {name}: ApprovalPolicy {policy_name!r} not found"))
        p.wake_at(p.now + timedelta(seconds=MISSING_POLICY_REQUEUE_SECONDS))
        return False
    spec = policy.get("spec") or {}
    timeout = _int(spec.get("timeoutSeconds"))
    default = _decision(spec.get("defaultDecision"))
    started = parse_time(entry.get("startedAt")) or p.now
    if timeout and default is not None:
        due = started + timedelta(seconds=timeout)
        if p.now >= due:
            by = f"ApprovalPolicy/{policy_name} defaultDecision"
            why = f"no decision within timeoutSeconds={timeout}"
            _decided(p, name, entry, default, by, format_time(p.now), why, defaulted=True, delivery=None)
            return True
        p.wake_at(due)
    return False


def _first_decision(p: _Pass, name: str, policy: str) -> tuple[Mapping[str, Any], str] | None:
    """The earliest valid decision delivery of the gate (first decision wins)."""
    valid: list[tuple[str, str, Mapping[str, Any], str]] = []
    for d in p.snap.deliveries.get(name, ()):
        spec = d.get("spec") or {}
        if ((spec.get("signalRef") or {}).get("name")) != policy:
            continue
        payload = spec.get("payload")
        decision = _decision(payload.get("decision") if isinstance(payload, Mapping) else None)
        if decision is None:
            continue
        meta = d.get("metadata") or {}
        valid.append((str(meta.get("creationTimestamp") or ""), str(meta.get("name")), d, decision))
    if not valid:
        return None
    _, _, delivery, decision = min(valid, key=lambda v: (v[0], v[1]))
    return delivery, decision


def _decided(
    p: _Pass,
    name: str,
    entry: dict[str, Any],
    decision: str,
    by: str,
    at: str,
    why: str,
    *,
    defaulted: bool,
    delivery: str | None,
) -> None:
    approval: dict[str, Any] = {
        "decision": decision,
        "decidedBy": by,
        "decidedAt": at,
        "defaulted": defaulted,
    }
    if why:
        approval["reason"] = why
    if delivery:
        approval["delivery"] = delivery
        entry["resourceRef"] = {
            "apiVersion": "signals.proompteng.ai/v1alpha1",
            "kind": "SignalDelivery",
            "name": delivery,
            "namespace": p.snap.namespace,
        }
    entry["approval"] = approval
    entry["outputs"] = {"decision": decision, "decidedBy": by, "decidedAt": at, "reason": why}
    how = " (the policy's defaultDecision)" if defaulted else ""
    text = f"step {name} {decision} by {by} at {at}{how}" + (f": {why}" if why else "")
    if decision == "approved":
        p.set_phase(entry, "Succeeded", "Approved", text)
        p.events.append(PlannedEvent("Normal", "ApprovalApproved", text))
    else:
        p.set_phase(entry, "Failed", "ApprovalRejected", text)
        p.events.append(PlannedEvent("Warning", "ApprovalRejected", text))


def _signal(p: _Pass, name: str, entry: dict[str, Any]) -> bool:
    signal, delivery_id = signal_wait_keys(p.steps[name])
    started = parse_time(entry.get("startedAt")) or p.now
    matches: list[tuple[datetime, str, Mapping[str, Any]]] = []
    for d in p.snap.deliveries.get(name, ()):
        spec = d.get("spec") or {}
        if signal and ((spec.get("signalRef") or {}).get("name")) != signal:
            continue
        if delivery_id and spec.get("deliveryId") != delivery_id:
            continue
        meta = d.get("metadata") or {}
        created = parse_time(meta.get("creationTimestamp"))
        if created is None or created < started:  # only deliveries made while the step waits count
            continue
        matches.append((created, str(meta.get("name")), d))
    if not matches:
        return False
    _, delivery_name, delivery = min(matches, key=lambda m: (m[0], m[1]))
    payload = (delivery.get("spec") or {}).get("payload")
    entry["outputs"] = (
        dict(payload) if isinstance(payload, Mapping) else ({} if payload is None else {"payload": payload})
    )
    entry["resourceRef"] = {
        "apiVersion": "signals.proompteng.ai/v1alpha1",
        "kind": "SignalDelivery",
        "name": delivery_name,
        "namespace": p.snap.namespace,
        **({"uid": delivery["metadata"]["uid"]} if delivery["metadata"].get("uid") else {}),
    }
    text = f"step {name} received SignalDelivery {delivery_name}"
    p.set_phase(entry, "Succeeded", "SignalReceived", text)
    p.events.append(PlannedEvent("Normal", "SignalReceived", text))
    return True


def _adopt_later_attempt(p: _Pass, name: str, entry: dict[str, Any]) -> None:
    """A child of a later attempt than the status knows exists (the status write was lost): adopt it."""
    kind = CHILD_KIND.get(str(p.steps[name].get("kind")))
    if kind is None:
        return
    label = label_value(name)
    latest: tuple[int, str, Mapping[str, Any]] | None = None
    for (child_kind, child), obj in p.snap.children.items():
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if child_kind != kind or labels.get(LABEL_ORCHESTRATION_STEP) != label:
            continue
        attempt = _attempt_of(obj)
        if latest is None or attempt > latest[0]:
            latest = (attempt, child, obj)
    if latest is None or latest[0] <= _int(entry.get("attempt")):
        return
    attempt, child, obj = latest
    entry["attempt"] = attempt
    entry["startedAt"] = (obj.get("metadata") or {}).get("creationTimestamp") or format_time(p.now)
    for stale in ("finishedAt", "nextRetryAt", "outputs"):
        entry.pop(stale, None)
    entry["resourceRef"] = {
        "apiVersion": _CHILD_REFS[kind].api_version,
        "kind": kind,
        "name": child,
        "namespace": p.snap.namespace,
    }
    p.set_phase(entry, "Running", "Running", f"{kind} {child} adopted")
    p.notes.append(f"adopted {kind} {child} (attempt {attempt}) of step {name}")


def _walk_step(p: _Pass, name: str, cancelling: bool) -> None:
    entry = p.entries[name]
    phase = entry.get("phase") or "Pending"
    if phase in _DONE:
        return
    _adopt_later_attempt(p, name, entry)
    phase = entry.get("phase") or "Pending"
    if cancelling:
        if phase == "Running" and p.cancel_child(entry):
            entry["message"] = "cancelling: waiting for the child to stop"
            return
        p.set_phase(entry, "Cancelled", "Cancelled", f"cancelled through the {ANNOTATION_CANCEL} annotation")
        return
    if phase == "Running":
        _observe(p, name, entry)
        return
    deps = [d for d in _deps(p, name)]
    if any(p.entries[d].get("phase") != "Succeeded" for d in deps):
        waiting = [d for d in deps if p.entries[d].get("phase") != "Succeeded"]
        entry["message"] = f"waiting for {', '.join(waiting)}"
        return
    if phase == "Retrying":
        retry_at = parse_time(entry.get("nextRetryAt"))
        if retry_at is not None and retry_at > p.now:
            p.wake_at(retry_at)
            return
    _start(p, name, entry, _int(entry.get("attempt")) + 1)


def _deps(p: _Pass, name: str) -> list[str]:
    deps = p.steps[name].get("dependsOn")
    return [d for d in deps if isinstance(d, str) and d in p.entries] if isinstance(deps, list) else []


# -- status ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Outcome:
    phase: str
    reason: str
    message: str = ""
    invalid: bool = False
    accepted: bool = False
    waiting: tuple[str, str] | None = None
    warning: tuple[str, str] | None = None
    budget: tuple[ConditionStatus, str, str] | None = None  # BudgetExceeded (status, reason, message)


def _conditions(o: _Outcome) -> list[Cond]:
    running = o.phase == Phase.RUNNING
    conds = [
        Cond("InvalidSpec", o.invalid, o.reason if o.invalid else "Valid", o.message if o.invalid else ""),
        Cond(
            "Accepted",
            o.accepted,
            "Submitted" if o.accepted else o.reason,
            "the run's steps started" if o.accepted else o.message,
        ),
        Cond("InProgress", running, "Running" if running else o.reason, o.message if running else ""),
        Cond("Running", running, "InProgress" if running else o.reason, o.message if running else ""),
    ]
    if o.waiting is not None and running:
        conds.append(Cond("Waiting", True, o.waiting[0], o.waiting[1]))
    else:
        conds.append(Cond("Waiting", False, "NotWaiting"))
    if o.phase == Phase.SUCCEEDED:
        conds += [Cond("Succeeded", True, o.reason, o.message), Cond("Failed", False, o.reason)]
    elif o.phase in (Phase.FAILED, Phase.CANCELLED):
        conds += [Cond("Succeeded", False, o.reason, o.message), Cond("Failed", True, o.reason, o.message)]
    else:
        conds += [Cond("Succeeded", "Unknown", o.phase), Cond("Failed", False, o.phase)]
    if o.warning is not None:
        conds.append(Cond("Warning", True, o.warning[0], o.warning[1]))
    else:
        conds.append(Cond("Warning", False, "None"))
    if o.budget is not None:
        conds.append(Cond(CONDITION_BUDGET_EXCEEDED, o.budget[0], o.budget[1], o.budget[2]))
    return conds


def _status(
    snap: OrchestrationRunSnapshot, o: _Outcome, fields: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    old = snap.run.get("status") or {}
    merged: dict[str, Any] = {"runId": snap.name, **(fields or {})}
    if o.phase == Phase.RUNNING and not old.get("startedAt"):
        merged["startedAt"] = format_time(snap.now)
    if is_terminal(o.phase) and not old.get("finishedAt"):
        merged["finishedAt"] = format_time(snap.now)
    return compose_status(
        old,
        phase=o.phase,
        conditions=_conditions(o),
        generation=snap.run["metadata"].get("generation"),
        now=snap.now,
        fields=merged,
        summary_reason=o.reason,
        summary_message=o.message,
    )


def _phase_event(snap: OrchestrationRunSnapshot, o: _Outcome) -> list[PlannedEvent]:
    old = (snap.run.get("status") or {}).get("phase")
    if old == o.phase:
        return []
    if o.phase == Phase.FAILED:
        return [PlannedEvent("Warning", o.reason, o.message or "orchestration run failed")]
    if o.phase == Phase.PENDING and o.invalid:
        return [PlannedEvent("Warning", o.reason, o.message)]
    if o.phase == Phase.PENDING:
        return []
    return [PlannedEvent("Normal", o.phase, o.message or o.phase)]


def _plan(snap: OrchestrationRunSnapshot, o: _Outcome, **kw: Any) -> OrchestrationRunPlan:
    if snap.budget is not None and o.budget is None:
        o = replace(o, budget=snap.budget.condition)
    fields = kw.pop("fields", None)
    events = tuple(kw.pop("events", ())) + tuple(_phase_event(snap, o))
    return OrchestrationRunPlan(status=_status(snap, o, fields), phase=o.phase, events=events, **kw)


# -- entry -------------------------------------------------------------------------------------------


def decide(snap: OrchestrationRunSnapshot) -> OrchestrationRunPlan:
    run = snap.run
    meta = run.get("metadata") or {}
    status = run.get("status") or {}
    if meta.get("deletionTimestamp"):
        return OrchestrationRunPlan()  # garbage collection removes the children (owner references)
    if is_terminal(status.get("phase")):
        return _finished(snap)
    spec = run.get("spec") or {}
    ref = spec.get("orchestrationRef")
    orch_name = ref.get("name") if isinstance(ref, Mapping) else None
    if not orch_name:
        o = _Outcome(
            Phase.FAILED, "MissingOrchestrationRef", "spec.orchestrationRef.name is required", invalid=True
        )
        return _plan(snap, o)
    if str(orch_name) in ancestry(run):
        chain = " -> ".join([*ancestry(run), str(orch_name)])
        message = f"orchestration {orch_name} is already running in this run's ancestry ({chain})"
        return _plan(snap, _Outcome(Phase.FAILED, REASON_RECURSIVE_SUB_ORCHESTRATION, message, invalid=True))
    if snap.orchestration is None:
        return _missing_orchestration(snap, str(orch_name))
    orch_spec = snap.orchestration.get("spec") or {}
    problem = validate_definition(orch_spec, str(orch_name))
    if problem is not None:
        msg = f"orchestration {orch_name}: {problem.message}"
        return _plan(snap, _Outcome(Phase.FAILED, problem.reason, msg, invalid=True))
    held = _budget_hold(snap)
    if held is not None:
        return held
    steps = orchestration_steps(orch_spec)
    order = topological_order(steps) or []
    previous = {
        str(e.get("name")): dict(e) for e in status.get("stepStatuses") or () if isinstance(e, Mapping)
    }
    entries: dict[str, dict[str, Any]] = {}
    for s in steps:
        n = str(s["name"])
        entry = previous.get(n) or {"name": n, "kind": s["kind"], "phase": "Pending", "attempt": 0}
        entry["kind"] = s["kind"]
        entries[n] = entry
    params = spec.get("parameters") or {}
    p = _Pass(
        snap=snap,
        steps={str(s["name"]): s for s in steps},
        entries=entries,
        parameters={str(k): str(v) for k, v in params.items()} if isinstance(params, Mapping) else {},
    )
    cancelling = is_cancel_requested(run)
    for n in order:
        _walk_step(p, n, cancelling)
    failed = next((n for n in order if entries[n].get("phase") == "Failed"), None)
    if failed is not None and not cancelling:
        for n in order:  # stop the rest: the run has failed
            e = entries[n]
            if e.get("phase") not in _DONE:
                if e.get("phase") == "Running":
                    p.cancel_child(e)
                    p.set_phase(e, "Cancelled", "RunFailed", f"stopped: step {failed} failed")
                else:
                    e["message"] = f"not started: step {failed} failed"
    o = _run_outcome(p, order, failed, cancelling)
    fields = {"stepStatuses": [entries[str(s["name"])] for s in steps]}
    requeue = min(p.wakeups) if p.wakeups and not is_terminal(o.phase) else None
    return _plan(
        snap,
        o,
        fields=fields,
        create=tuple(p.creates),
        cancel=tuple(p.cancels),
        events=p.events,
        requeue_after=requeue,
        notes=tuple(p.notes),
    )


def _run_outcome(p: _Pass, order: list[str], failed: str | None, cancelling: bool) -> _Outcome:
    entries = p.entries
    warning = p.warnings[0] if p.warnings else None
    started = any(_int(e.get("attempt")) > 0 or e.get("phase") != "Pending" for e in entries.values())
    if cancelling:
        live = [n for n in order if entries[n].get("phase") == "Running"]
        if not live:
            return _Outcome(
                Phase.CANCELLED,
                "Cancelled",
                f"cancelled through the {ANNOTATION_CANCEL} annotation",
                accepted=started,
            )
        return _Outcome(
            Phase.RUNNING,
            "Cancelling",
            f"cancelling: waiting for {', '.join(live)} to stop",
            accepted=True,
            warning=warning,
        )
    if failed is not None:
        e = entries[failed]
        reason = str(e.get("reason") or "")
        run_reason = (
            reason
            if reason in ("RetriesExhausted", "ApprovalRejected", REASON_RECURSIVE_SUB_ORCHESTRATION)
            else "StepFailed"
        )
        message = f"step {failed} failed: {reason}: {e.get('message') or ''}".rstrip(": ")
        return _Outcome(Phase.FAILED, run_reason, message, accepted=True)
    if all(entries[n].get("phase") == "Succeeded" for n in order):
        return _Outcome(Phase.SUCCEEDED, "Completed", f"all {len(order)} steps succeeded", accepted=True)
    if not started:
        return _Outcome(Phase.PENDING, "Pending", "no step has started", warning=warning)
    waiting = None
    gates = [
        n
        for n in order
        if entries[n].get("phase") == "Running" and entries[n].get("reason") == "AwaitingApproval"
    ]
    signals = [
        n
        for n in order
        if entries[n].get("phase") == "Running" and entries[n].get("reason") == "AwaitingSignal"
    ]
    if gates:
        waiting = ("AwaitingApproval", f"waiting for a decision on {', '.join(gates)}")
    elif signals:
        waiting = ("AwaitingSignal", f"waiting for a signal on {', '.join(signals)}")
    running = [n for n in order if entries[n].get("phase") in ("Running", "Retrying")]
    message = f"running: {', '.join(running)}" if running else "running"
    return _Outcome(Phase.RUNNING, "Running", message, accepted=True, waiting=waiting, warning=warning)


def _budget_hold(snap: OrchestrationRunSnapshot) -> OrchestrationRunPlan | None:
    """Before its first step: hold the run while its Budget is exceeded (or unreadable); a Budget that does
    not exist is a missing reference (held for the reference grace, then Failed). Cancel ends a held run."""
    check = snap.budget
    if check is None or not (check.holds or not check.verdict.found):
        return None
    if is_cancel_requested(snap.run):
        message = f"cancelled through the {ANNOTATION_CANCEL} annotation"
        return _plan(snap, _Outcome(Phase.CANCELLED, "Cancelled", message))
    if not check.verdict.found:
        message = f"budget {check.name!r} not found in namespace {snap.namespace!r}"
        created = parse_time((snap.run.get("metadata") or {}).get("creationTimestamp")) or snap.now
        due = created + timedelta(seconds=snap.tuning.reference_grace_seconds)
        if snap.now >= due:
            return _plan(snap, _Outcome(Phase.FAILED, "MissingBudget", message, invalid=True))
        o = _Outcome(Phase.PENDING, "MissingBudget", f"{message}; waiting for it", invalid=True)
        return _plan(snap, o, requeue_after=max(1.0, (due - snap.now).total_seconds()))
    _, reason, message = check.condition
    return _plan(snap, _Outcome(Phase.PENDING, reason, message), requeue_after=BUDGET_RECHECK_SECONDS)


def _missing_orchestration(snap: OrchestrationRunSnapshot, orch_name: str) -> OrchestrationRunPlan:
    message = f"orchestration {orch_name!r} not found in namespace {snap.namespace!r}"
    created = parse_time((snap.run.get("metadata") or {}).get("creationTimestamp")) or snap.now
    due = created + timedelta(seconds=snap.tuning.reference_grace_seconds)
    if is_cancel_requested(snap.run):
        return _plan(
            snap,
            _Outcome(Phase.CANCELLED, "Cancelled", f"cancelled through the {ANNOTATION_CANCEL} annotation"),
        )
    if snap.now >= due:
        return _plan(snap, _Outcome(Phase.FAILED, "MissingOrchestration", message, invalid=True))
    o = _Outcome(Phase.PENDING, "MissingOrchestration", f"{message}; waiting for it", invalid=True)
    return _plan(snap, o, requeue_after=max(0.0, (due - snap.now).total_seconds()))


def _finished(snap: OrchestrationRunSnapshot) -> OrchestrationRunPlan:
    """A finished run owns no unfinished child: a child still running is cancelled."""
    cancels = tuple(
        ChildCancel(kind, name)
        for (kind, name), child in sorted(snap.children.items())
        if not is_terminal((child.get("status") or {}).get("phase")) and not is_cancel_requested(child)
    )
    return OrchestrationRunPlan(cancel=cancels)
