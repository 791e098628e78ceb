"""The OrchestrationRun decision for steps that wait: ApprovalGate (approve, reject, the policy's default
after its timeout, a missing policy) and SignalWait (a delivery before or after the step started, by signal
or by deliveryId, payload as outputs)."""

from __future__ import annotations

from typing import Any

import pytest

from jangar.controllers.orchestration_indexes import waiting_keys
from jangar.controllers.orchestrationrun.decide import MISSING_POLICY_REQUEUE_SECONDS, decide
from tests.unit.controllers.orchestration_objects import (
    World,
    at,
    cond,
    decision,
    delivery,
    orchestration,
    orun,
    policy,
    snap,
    step,
    steps_of,
    tool_step,
    ts,
)


def gate_world(policy_spec: dict[str, Any] | None = None, **gate: Any) -> World:
    orch = orchestration(
        step("gate", "ApprovalGate", policyRef="gate-policy", **gate), tool_step("after", "gate")
    )
    return World(orch, policies={"gate-policy": policy(**(policy_spec or {}))})


def test_a_gate_waits_for_a_decision_and_is_indexed_by_what_it_waits_for() -> None:
    w = gate_world()
    plan = w.step()
    entry = w.steps["gate"]
    assert (entry["phase"], entry["reason"]) == ("Running", "AwaitingApproval")
    assert entry["waitingFor"] == {"deliveryId": "approval:r1:gate", "policy": "gate-policy"}
    assert plan.create == () and plan.phase == "Running"
    assert cond(plan, "Waiting")["status"] == "True" and cond(plan, "Waiting")["reason"] == "AwaitingApproval"
    assert plan.requeue_after is None  # no timeout: only a delivery (or a policy change) wakes it
    assert waiting_keys(w.run) == ["ns/delivery/approval:r1:gate", "ns/policy/gate-policy"]


def test_approval_passes_the_gate_with_the_decision_as_outputs_and_an_event() -> None:
    w = gate_world()
    w.step()
    w.snap_kw["deliveries"] = {"gate": [decision("gate", "approved", created=5)]}
    plan = w.step(at(6))
    entry = w.steps["gate"]
    assert (entry["phase"], entry["reason"]) == ("Succeeded", "Approved")
    assert entry["outputs"] == {
        "decision": "approved",
        "decidedBy": "alice",
        "decidedAt": ts(5),
        "reason": "looks good",
    }
    assert entry["approval"] == {
        "decision": "approved",
        "decidedBy": "alice",
        "decidedAt": ts(5),
        "defaulted": False,
        "reason": "looks good",
        "delivery": "r1-gate-decision",
    }
    assert entry["resourceRef"]["kind"] == "SignalDelivery"
    assert "waitingFor" not in entry and waiting_keys(w.run) == []
    assert [c.name for c in plan.create] == ["r1-after-1"]
    assert ("Normal", "ApprovalApproved") in [(e.type, e.reason) for e in plan.events]
    assert cond(plan, "Waiting")["status"] == "False"


def test_rejection_fails_the_run_with_approval_rejected_and_no_retry() -> None:
    w = gate_world(retries=3)
    w.step()
    w.snap_kw["deliveries"] = {"gate": [decision("gate", "rejected", by="bob")]}
    plan = w.step(at(1))
    assert plan.phase == "Failed"
    assert cond(plan, "Failed")["reason"] == "ApprovalRejected"
    assert "bob" in cond(plan, "Failed")["message"]
    assert w.steps["gate"]["approval"]["decidedBy"] == "bob"
    assert ("Warning", "ApprovalRejected") in [(e.type, e.reason) for e in plan.events]
    assert w.steps["after"]["phase"] == "Pending"


def test_the_first_decision_wins_and_invalid_ones_are_ignored() -> None:
    w = gate_world()
    w.step()
    late = decision("gate", "rejected", created=9) | {
        "metadata": {"name": "later", "namespace": "ns", "creationTimestamp": ts(9)}
    }
    wrong_policy = decision("gate", "rejected", policy="other", created=1)
    garbage = delivery(
        "junk", signal="gate-policy", delivery_id="approval:r1:gate", payload={"decision": "maybe"}, created=0
    )
    w.snap_kw["deliveries"] = {"gate": [late, wrong_policy, garbage, decision("gate", "approve", created=3)]}
    w.step(at(10))
    assert w.steps["gate"]["approval"]["decision"] == "approved"


@pytest.mark.parametrize(
    ("default", "phase"), [("deny", "Failed"), ("allow", "Succeeded"), ("approve", "Succeeded")]
)
def test_the_policys_default_decision_applies_after_its_timeout(default: str, phase: str) -> None:
    w = gate_world({"defaultDecision": default, "timeoutSeconds": 600})
    plan = w.step()
    assert plan.requeue_after == pytest.approx(600.0)
    early = w.step(at(599))
    assert w.steps["gate"]["phase"] == "Running" and early.requeue_after == pytest.approx(1.0)
    w.step(at(600))
    entry = w.steps["gate"]
    assert entry["phase"] == phase
    assert entry["approval"]["defaulted"] is True
    assert entry["approval"]["decidedBy"] == "ApprovalPolicy/gate-policy defaultDecision"
    assert "timeoutSeconds=600" in entry["approval"]["reason"]
    if phase == "Failed":
        assert w.phase == "Failed" and entry["reason"] == "ApprovalRejected"


def test_a_policy_without_a_default_waits_for_ever() -> None:
    w = gate_world({"timeoutSeconds": 10})
    w.step()
    plan = w.step(at(10_000))
    assert w.steps["gate"]["phase"] == "Running" and plan.requeue_after is None


def test_a_missing_policy_waits_with_a_warning_and_rechecks() -> None:
    orch = orchestration(step("gate", "ApprovalGate", policyRef="nope"))
    plan = decide(snap(orun(), orch, policies={"nope": None}))
    assert steps_of(plan)["gate"]["phase"] == "Running"
    assert cond(plan, "Warning")["reason"] == "MissingApprovalPolicy"
    assert plan.requeue_after == MISSING_POLICY_REQUEUE_SECONDS


def test_a_gate_step_timeout_fails_it_as_timed_out() -> None:
    w = gate_world(timeoutSeconds=30)
    w.step()
    w.step(at(30))
    assert w.steps["gate"]["reason"] == "StepTimedOut" and w.phase == "Failed"


# -- SignalWait ---------------------------------------------------------------------------------------------


def signal_world(**wait: Any) -> World:
    return World(
        orchestration(
            step("wait", "SignalWait", **wait),
            tool_step("next", "wait", **{"with": {"who": "{{steps.wait.outputs.user}}"}}),
        )
    )


def test_a_delivery_from_before_the_step_started_does_not_count() -> None:
    w = signal_world(signalRef="go")
    w.snap_kw["deliveries"] = {"wait": [delivery("old", signal="go", payload={"user": "x"}, created=-60)]}
    plan = w.step()
    assert w.steps["wait"]["phase"] == "Running" and w.steps["wait"]["reason"] == "AwaitingSignal"
    assert w.steps["wait"]["waitingFor"] == {"signal": "go"}
    assert cond(plan, "Waiting")["reason"] == "AwaitingSignal"
    assert waiting_keys(w.run) == ["ns/signal/go"]


def test_a_delivery_after_the_start_passes_the_step_with_its_payload_as_outputs() -> None:
    w = signal_world(signalRef="go")
    w.step()
    w.snap_kw["deliveries"] = {
        "wait": [
            delivery("old", signal="go", created=-60),
            delivery("new", signal="go", payload={"user": "ann"}, created=4),
        ]
    }
    plan = w.step(at(5))
    entry = w.steps["wait"]
    assert (entry["phase"], entry["outputs"]) == ("Succeeded", {"user": "ann"})
    assert entry["resourceRef"]["name"] == "new"
    assert plan.create[0].manifest["spec"]["parameters"] == {"who": "ann"}
    assert ("Normal", "SignalReceived") in [(e.type, e.reason) for e in plan.events]


def test_a_delivery_id_must_match_when_the_step_names_one() -> None:
    w = signal_world(signalRef="go", deliveryId="d-1")
    w.step()
    w.snap_kw["deliveries"] = {"wait": [delivery("other", signal="go", delivery_id="d-2", created=1)]}
    w.step(at(2))
    assert w.steps["wait"]["phase"] == "Running"
    w.snap_kw["deliveries"]["wait"].append(
        delivery("mine", signal="go", delivery_id="d-1", payload=[1, 2], created=2)
    )
    w.step(at(3))
    assert w.steps["wait"]["phase"] == "Succeeded" and w.steps["wait"]["outputs"] == {"payload": [1, 2]}


def test_a_wait_by_delivery_id_only() -> None:
    w = World(orchestration(step("wait", "SignalWait", deliveryId="d-9")))
    w.step()
    assert waiting_keys(w.run) == ["ns/delivery/d-9"]
    w.snap_kw["deliveries"] = {"wait": [delivery("x", signal="anything", delivery_id="d-9", created=1)]}
    w.step(at(1))
    assert w.phase == "Succeeded" and w.steps["wait"]["outputs"] == {}
