"""Signal, SignalDelivery and ApprovalPolicy status (the supporting loop's `check` functions).

Why checks in the shared supporting loop (`supporting.py`) and not full reconcilers: these kinds own no
children; each status is a function of the object and of cached deliveries, found through one index
(`DELIVERY_TARGET`, `<ns>/<Kind>/<name>` of what a delivery is addressed to). The loop already gives
observedGeneration, the Ready/InvalidSpec condition set, no-churn writes and Warning Events.

* **SignalDelivery** → phase `Delivered` with `deliveredAt` (set once, never moved) once its target exists:
  the Signal named by `spec.signalRef`, or, for a decision delivery (label
  `approvals.proompteng.ai/decision`), the ApprovalPolicy it names. A decision must be `approved` or
  `rejected` (and agree with `payload.decision` when that is set). A missing target is `Pending` with
  `Ready=False/SignalMissing` (or `ApprovalPolicyMissing`) and is looked at again the moment the target
  appears (the target's events map to its undelivered deliveries). A delivered delivery stays delivered.
* **Signal** → phase `Active`; `status.lastDeliveryAt` = the newest creation time of a delivery addressed to
  it (it never moves back when a delivery is deleted).
* **ApprovalPolicy** → `mode` manual|auto, `defaultDecision` approve|allow|reject|deny|none, `subjects` of
  kind User, Group or ServiceAccount with names, `timeoutSeconds` a non-negative integer, auto mode needs
  a default decision. Valid → phase `Active` (`Ready=True/Active`); the reference forced Active always,
  here an invalid policy is `Invalid` with the reason. `status.lastDecisionAt` = the newest decision
  delivery naming it. Only these keys of the status are written: another writer's fields are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from jangar.api.contract import APPROVAL_DECISIONS, approval_decision
from jangar.api.refs import APPROVALPOLICIES, SIGNALDELIVERIES, SIGNALS
from jangar.conditions import format_time, parse_time
from jangar.controllers.supporting import CheckEnv, CheckFunc, Verdict, invalid, ready
from jangar.runtime import CacheReader, JsonObject, Request
from jangar.runtime.cache import Cache

__all__ = [
    "DELIVERY_TARGET",
    "check_approval_policy",
    "check_signal",
    "delivery_target",
    "install_signal_indexes",
    "make_check_signal_delivery",
    "target_of_delivery",
    "undelivered_for",
]

DELIVERY_TARGET = "signaldelivery-target"
SIGNAL = "Signal"
APPROVAL_POLICY = "ApprovalPolicy"
MODES = ("manual", "auto")
DEFAULT_DECISIONS = ("approve", "allow", "reject", "deny", "none")
SUBJECT_KINDS = ("User", "Group", "ServiceAccount")


def _ns(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def _signal_name(delivery: Mapping[str, Any]) -> str | None:
    ref = (delivery.get("spec") or {}).get("signalRef")
    if isinstance(ref, Mapping) and isinstance(ref.get("name"), str) and ref["name"].strip():
        return str(ref["name"]).strip()
    return None


def delivery_target(delivery: Mapping[str, Any]) -> tuple[str, str] | None:
    """(kind, name) a delivery is addressed to: the ApprovalPolicy for a decision delivery, else the
    Signal; None without `spec.signalRef.name`."""
    name = _signal_name(delivery)
    if name is None:
        return None
    kind = APPROVAL_POLICY if approval_decision(dict(delivery)) is not None else SIGNAL
    return kind, name


def _target_key(ns: str, kind: str, name: str) -> str:
    return f"{ns}/{kind}/{name}"


def delivery_target_index(delivery: JsonObject) -> list[str]:
    target = delivery_target(delivery)
    return [_target_key(_ns(delivery), *target)] if target else []


def install_signal_indexes(cache: Cache) -> None:
    cache.add_index(SIGNALDELIVERIES, DELIVERY_TARGET, delivery_target_index)


def _deliveries(cache: CacheReader, ns: str, kind: str, name: str) -> list[JsonObject]:
    return cache.list(SIGNALDELIVERIES, ns, index=(DELIVERY_TARGET, _target_key(ns, kind, name)), copy=False)


def _newest(deliveries: list[JsonObject], old: Any) -> str | None:
    """The newest creationTimestamp among `deliveries`, never older than `old`."""
    moments = [parse_time((d.get("metadata") or {}).get("creationTimestamp")) for d in deliveries]
    moments.append(parse_time(old))
    present = [m for m in moments if m is not None]
    return format_time(max(present)) if present else None


# -- mappers ---------------------------------------------------------------------------------------


def target_of_delivery(kind: str) -> Callable[[JsonObject], list[Request]]:
    """Mapper: a delivery → the `kind` object (Signal or ApprovalPolicy) it is addressed to."""

    def mapper(delivery: JsonObject) -> list[Request]:
        target = delivery_target(delivery)
        if target is None or target[0] != kind:
            return []
        return [Request(_ns(delivery) or None, target[1])]

    return mapper


def undelivered_for(cache: CacheReader, kind: str) -> Callable[[JsonObject], list[Request]]:
    """Mapper: a Signal or ApprovalPolicy → its deliveries not delivered yet (they wait for it)."""

    def mapper(obj: JsonObject) -> list[Request]:
        ns = _ns(obj)
        name = str((obj.get("metadata") or {}).get("name"))
        return sorted(
            Request(ns or None, str(d["metadata"]["name"]))
            for d in _deliveries(cache, ns, kind, name)
            if not (d.get("status") or {}).get("deliveredAt")
        )

    return mapper


# -- SignalDelivery --------------------------------------------------------------------------------


def _decision_problem(delivery: Mapping[str, Any]) -> str | None:
    decision = approval_decision(dict(delivery))
    if decision is None:
        return None
    if decision not in APPROVAL_DECISIONS:
        return f"label approvals.proompteng.ai/decision must be approved or rejected, got {decision!r}"
    payload = (delivery.get("spec") or {}).get("payload")
    said = payload.get("decision") if isinstance(payload, Mapping) else None
    if said is not None and said != decision:
        return f"payload.decision {said!r} contradicts the decision label {decision!r}"
    return None


def make_check_signal_delivery(clock: Callable[[], datetime]) -> CheckFunc:
    async def check_signal_delivery(obj: JsonObject, env: CheckEnv) -> Verdict:
        status = obj.get("status") or {}
        delivered_at = status.get("deliveredAt")
        if delivered_at and status.get("phase") == "Delivered":
            return ready("Delivered", "delivered", phase="Delivered", fields={"deliveredAt": delivered_at})
        target = delivery_target(obj)
        if target is None:
            return invalid("InvalidSpec", "spec.signalRef.name is required: the Signal this delivery is on")
        problem = _decision_problem(obj)
        if problem is not None:
            return invalid("InvalidDecision", problem)
        kind, name = target
        ns = _ns(obj)
        ref = APPROVALPOLICIES if kind == APPROVAL_POLICY else SIGNALS
        if env.cache.get(ref, name, ns, copy=False) is None:
            reason = "ApprovalPolicyMissing" if kind == APPROVAL_POLICY else "SignalMissing"
            what = "approval policy" if kind == APPROVAL_POLICY else "signal"
            return Verdict(
                False,
                reason,
                f"{what} {name!r} not found in namespace {ns!r}; delivered once it exists",
                phase="Pending",
            )
        moment = delivered_at or format_time(clock())
        return ready(
            "Delivered", f"delivered to {kind} {name}", phase="Delivered", fields={"deliveredAt": moment}
        )

    return check_signal_delivery


# -- Signal ----------------------------------------------------------------------------------------


async def check_signal(obj: JsonObject, env: CheckEnv) -> Verdict:
    spec = obj.get("spec") or {}
    channel = spec.get("channel")
    name = str(obj["metadata"]["name"])
    last = _newest(
        _deliveries(env.cache, _ns(obj), SIGNAL, name), (obj.get("status") or {}).get("lastDeliveryAt")
    )
    fields = {"lastDeliveryAt": last}
    if channel is not None and (not isinstance(channel, str) or not channel.strip()):
        return invalid("InvalidChannel", "spec.channel must be a non-empty string when set", fields=fields)
    return ready("Active", "signal is active", phase="Active", fields=fields)


# -- ApprovalPolicy --------------------------------------------------------------------------------


def approval_policy_problems(spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(reason, message) for each problem of an ApprovalPolicy spec, in field order."""
    problems: list[tuple[str, str]] = []
    mode = spec.get("mode")
    if mode is not None and (not isinstance(mode, str) or mode.lower() not in MODES):
        problems.append(("InvalidMode", f"spec.mode must be manual or auto, got {mode!r}"))
    default = spec.get("defaultDecision")
    if default is not None and (not isinstance(default, str) or default.lower() not in DEFAULT_DECISIONS):
        problems.append(
            (
                "InvalidDefaultDecision",
                f"spec.defaultDecision must be approve, allow, reject, deny or none, got {default!r}",
            )
        )
    elif isinstance(mode, str) and mode.lower() == "auto" and (default is None or default.lower() == "none"):
        problems.append(
            (
                "MissingDefaultDecision",
                "spec.mode auto decides by spec.defaultDecision: set it to approve or reject",
            )
        )
    subjects = spec.get("subjects")
    if subjects is not None and not isinstance(subjects, list):
        problems.append(("InvalidSubject", "spec.subjects must be a list of {kind, name}"))
        subjects = []
    for i, subject in enumerate(subjects or ()):
        kind = subject.get("kind") if isinstance(subject, Mapping) else None
        name = subject.get("name") if isinstance(subject, Mapping) else None
        if kind not in SUBJECT_KINDS:
            problems.append(
                (
                    "InvalidSubject",
                    f"spec.subjects[{i}].kind must be User, Group or ServiceAccount (who may decide), "
                    f"got {kind!r}",
                )
            )
        if not isinstance(name, str) or not name.strip():
            problems.append(("InvalidSubject", f"spec.subjects[{i}].name is required"))
    timeout = spec.get("timeoutSeconds")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0):
        problems.append(
            ("InvalidTimeout", f"spec.timeoutSeconds must be a whole number of seconds >= 0, got {timeout!r}")
        )
    return problems


async def check_approval_policy(obj: JsonObject, env: CheckEnv) -> Verdict:
    name = str(obj["metadata"]["name"])
    decisions = [
        d
        for d in _deliveries(env.cache, _ns(obj), APPROVAL_POLICY, name)
        if approval_decision(d) in APPROVAL_DECISIONS
    ]
    last = _newest(decisions, (obj.get("status") or {}).get("lastDecisionAt"))
    fields = {"lastDecisionAt": last}
    problems = approval_policy_problems(obj.get("spec") or {})
    if problems:
        return invalid(problems[0][0], "; ".join(m for _, m in problems), fields=fields)
    return ready("Active", "approval policy is active", phase="Active", fields=fields)
