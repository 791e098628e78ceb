"""ApprovalPolicy, Signal, SignalDelivery and Budget against a real API server: the chart's examples reconcile
to a truthful status, deliveries wait for their target, decisions stamp the policy, and an AgentRun whose
Budget is exceeded is held with BudgetExceeded until the limit is raised."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from jangar.api.contract import LABEL_APPROVAL_DECISION
from jangar.api.refs import APPROVALPOLICIES, BUDGETS, SIGNALDELIVERIES, SIGNALS
from jangar.controllers.kinds import AGENTRUNS
from jangar.runtime import Client, ResourceRef
from tests.envtest.controllers_fixtures import (
    ControllerProcess,
    apply_basics,
    cond,
    eventually,
    run,
    wait_phase,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "charts" / "agents" / "examples"


def example(name: str, namespace: str) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    obj["metadata"]["namespace"] = namespace
    return obj


async def status_where(
    client: Client, ref: ResourceRef, ns: str, name: str, *, phase: str, timeout: float = 30.0
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        obj: dict[str, Any] = await client.get(ref, name, ns)
        status = obj.get("status") or {}
        generation = obj["metadata"].get("generation")
        return (
            obj if status.get("phase") == phase and status.get("observedGeneration") == generation else None
        )

    result: dict[str, Any] = await eventually(check, timeout=timeout, what=f"{ref.kind} {name} {phase}")
    return result


def true(obj: Mapping[str, Any], type_: str) -> bool:
    return cond(obj, type_).get("status") == "True"


async def test_the_chart_examples_reconcile_to_a_truthful_status(
    controller: ControllerProcess, client: Client, namespace: str
) -> None:
    ns = namespace
    # the delivery first: it waits for its Signal, then is delivered when the Signal appears
    await client.create(SIGNALDELIVERIES, example("signaldelivery-sample.yaml", ns))
    pending = await status_where(client, SIGNALDELIVERIES, ns, "approval-1", phase="Pending")
    assert cond(pending, "Ready")["reason"] == "SignalMissing"
    assert not (pending.get("status") or {}).get("deliveredAt")
    for name, ref in (
        ("signal-sample.yaml", SIGNALS),
        ("approvalpolicy-sample.yaml", APPROVALPOLICIES),
        ("budget-sample.yaml", BUDGETS),
    ):
        await client.create(ref, example(name, ns))

    delivered = await status_where(client, SIGNALDELIVERIES, ns, "approval-1", phase="Delivered")
    assert cond(delivered, "Ready")["reason"] == "Delivered"
    delivered_at = delivered["status"]["deliveredAt"]
    assert delivered_at

    async def last_delivery() -> Any:
        signal = await client.get(SIGNALS, "human-approval", ns)
        return signal if (signal.get("status") or {}).get("lastDeliveryAt") else None

    signal = await eventually(last_delivery, what="Signal.lastDeliveryAt")
    assert signal["status"]["phase"] == "Active" and true(signal, "Ready")
    assert signal["status"]["lastDeliveryAt"] == delivered["metadata"]["creationTimestamp"]

    policy = await status_where(client, APPROVALPOLICIES, ns, "default-approval", phase="Active")
    assert cond(policy, "Ready")["reason"] == "Active" and not true(policy, "InvalidSpec")
    assert "lastDecisionAt" not in policy["status"]

    budget = await status_where(client, BUDGETS, ns, "default-budget", phase="Active")
    assert budget["status"]["used"] == {"tokens": "0", "dollars": "0", "cpu": "0", "memory": "0", "gpu": "0"}
    assert cond(budget, "Exceeded")["status"] == "False" and true(budget, "Ready")
    assert budget["status"]["windowStart"]

    # a decision delivery names the policy (not a Signal) and stamps its lastDecisionAt
    await client.create(
        SIGNALDELIVERIES,
        {
            "metadata": {
                "name": "run-gate-decision",
                "namespace": ns,
                "labels": {LABEL_APPROVAL_DECISION: "approved"},
            },
            "spec": {
                "signalRef": {"name": "default-approval"},
                "deliveryId": "approval:run:gate",
                "payload": {"decision": "approved", "decidedBy": "alice", "reason": "ok"},
            },
        },
    )
    decision = await status_where(client, SIGNALDELIVERIES, ns, "run-gate-decision", phase="Delivered")

    async def decided() -> Any:
        obj = await client.get(APPROVALPOLICIES, "default-approval", ns)
        return obj if (obj.get("status") or {}).get("lastDecisionAt") else None

    policy = await eventually(decided, what="ApprovalPolicy.lastDecisionAt")
    assert policy["status"]["lastDecisionAt"] == decision["metadata"]["creationTimestamp"]
    assert policy["status"]["phase"] == "Active"
    # the Signal's delivery time did not move for a decision
    assert (await client.get(SIGNALS, "human-approval", ns))["status"]["lastDeliveryAt"] == signal["status"][
        "lastDeliveryAt"
    ]


async def test_invalid_policies_and_decisions_say_why(
    controller: ControllerProcess, client: Client, namespace: str
) -> None:
    ns = namespace
    await client.create(
        APPROVALPOLICIES,
        {
            "metadata": {"name": "bad", "namespace": ns},
            "spec": {"mode": "auto", "subjects": [{"kind": "Orchestration", "name": "x"}]},
        },
    )
    bad = await status_where(client, APPROVALPOLICIES, ns, "bad", phase="Invalid")
    assert cond(bad, "InvalidSpec")["reason"] == "MissingDefaultDecision"
    assert "spec.subjects[0].kind" in cond(bad, "Ready")["message"]
    await client.patch(
        APPROVALPOLICIES,
        "bad",
        {"spec": {"defaultDecision": "approve", "subjects": [{"kind": "User", "name": "alice"}]}},
        namespace=ns,
    )
    fixed = await status_where(client, APPROVALPOLICIES, ns, "bad", phase="Active")
    assert not true(fixed, "InvalidSpec")
    await client.create(
        SIGNALDELIVERIES,
        {
            "metadata": {"name": "maybe", "namespace": ns, "labels": {LABEL_APPROVAL_DECISION: "maybe"}},
            "spec": {"signalRef": {"name": "bad"}},
        },
    )
    invalid = await status_where(client, SIGNALDELIVERIES, ns, "maybe", phase="Invalid")
    assert cond(invalid, "InvalidSpec")["reason"] == "InvalidDecision"


async def test_a_run_on_an_exceeded_budget_waits_until_the_limit_is_raised(
    controller: ControllerProcess, client: Client, namespace: str
) -> None:
    ns = namespace
    await apply_basics(client, ns)
    await client.create(
        BUDGETS, {"metadata": {"name": "zero", "namespace": ns}, "spec": {"limits": {"tokens": "0"}}}
    )
    await status_where(client, BUDGETS, ns, "zero", phase="Exceeded")
    await client.create(AGENTRUNS, run(ns, "held", budgetRef={"name": "zero"}))

    async def held() -> Any:
        obj = await client.get(AGENTRUNS, "held", ns)
        return obj if true(obj, "BudgetExceeded") else None

    obj = await eventually(held, what="BudgetExceeded on the run")
    assert obj["status"]["phase"] == "Pending"
    assert "budget zero tokens exceeded" in cond(obj, "BudgetExceeded")["message"]
    assert cond(obj, "BudgetExceeded")["reason"] == "BudgetExceeded"
    assert not obj["status"].get("jobRef")
    await client.patch(BUDGETS, "zero", {"spec": {"limits": {"tokens": "1000"}}}, namespace=ns)
    started = await wait_phase(client, ns, "held", "Running", timeout=30)
    assert cond(started, "BudgetExceeded")["status"] == "False"
    assert started["status"]["jobRef"]["name"] == "held-job"
