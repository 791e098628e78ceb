"""Issue 10's "Done when": the chart's orchestration examples — orchestration, orchestrationrun, tool, toolrun,
approvalpolicy, signal, signaldelivery and budget samples — applied together (with the Agent and
ImplementationSpec samples the orchestration names) reconcile to a truthful status, each asserted.

Every orchestration and supporting controller runs in one manager. envtest has no Job controller or kubelet:
the test finishes the ToolRuns' Jobs the way they would (`finish_toolrun`), and plays the AgentRun
controller (off here) by patching the step AgentRun's status.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import yaml

from jangar.api.refs import (
    APPROVALPOLICIES,
    BUDGETS,
    ORCHESTRATIONRUNS,
    ORCHESTRATIONS,
    SIGNALDELIVERIES,
    SIGNALS,
    TOOLRUNS,
    TOOLS,
)
from jangar.controllers.kinds import AGENTRUNS, AGENTS, IMPLEMENTATIONSPECS, JOBS
from jangar.dev.cluster import LocalCluster
from jangar.runtime import Client, NotFoundError, ResourceRef
from jangar.settings import ControllerTuning
from tests.chart.helm import CHART
from tests.envtest.controllers_fixtures import cond, eventually, running_controller, settings_for
from tests.envtest.test_controllers_orchestration import finish_toolrun, set_phase

SAMPLES = {
    "orchestration-sample.yaml": ORCHESTRATIONS,
    "orchestrationrun-sample.yaml": ORCHESTRATIONRUNS,
    "tool-sample.yaml": TOOLS,
    "toolrun-sample.yaml": TOOLRUNS,
    "approvalpolicy-sample.yaml": APPROVALPOLICIES,
    "signal-sample.yaml": SIGNALS,
    "signaldelivery-sample.yaml": SIGNALDELIVERIES,
    "budget-sample.yaml": BUDGETS,
    # what the orchestration sample's AgentRun step names
    "agent-sample.yaml": AGENTS,
    "implementationspec-sample.yaml": IMPLEMENTATIONSPECS,
}


def sample(name: str, ns: str) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((CHART / "examples" / name).read_text())
    obj["metadata"]["namespace"] = ns
    return obj


async def current(client: Client, ref: ResourceRef, ns: str, name: str, phase: str) -> dict[str, Any]:
    """`name` once its status has `phase` and has observed its generation."""

    async def check() -> dict[str, Any] | None:
        try:
            obj: dict[str, Any] = await client.get(ref, name, ns)
        except NotFoundError:
            return None
        status = obj.get("status") or {}
        observed = status.get("observedGeneration") == obj["metadata"].get("generation")
        return obj if status.get("phase") == phase and observed else None

    found: dict[str, Any] = await eventually(check, timeout=60, what=f"{ref.kind} {name} {phase}")
    return found


def conds(obj: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in (obj.get("status") or {}).get("conditions") or ()}


async def test_the_orchestration_examples_applied_together_reconcile_to_a_truthful_status(
    envtest: LocalCluster, client: Client, namespace: str
) -> None:
    ns = namespace
    settings = settings_for(ns, JANGAR_AGENTS_CONTROLLER_ENABLED="false")
    tuning = ControllerTuning(agentrun_workers=4, reference_grace_seconds=60.0)
    async with running_controller(envtest.kubeconfig, settings, tuning):
        for name, ref in SAMPLES.items():  # all of them at once, in no helpful order
            await client.create(ref, sample(name, ns))

        # Tool: valid
        tool = await current(client, TOOLS, ns, "echo-tool", "Ready")
        assert conds(tool)["Ready"] == ("True", "ValidSpec")

        # ToolRun: a Job and its spec ConfigMap, Running until the Job completes, then Succeeded
        lint = await current(client, TOOLRUNS, ns, "lint-run", "Running")
        assert lint["status"]["jobRef"]["name"] == "lint-run-job"
        assert conds(lint)["Running"] == ("True", "Submitted")
        job = await client.get(JOBS, "lint-run-job", ns)
        container = job["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == ['echo "linting ./src"']  # {{parameters.message}} rendered
        await finish_toolrun(client, ns, "lint-run")
        lint = await current(client, TOOLRUNS, ns, "lint-run", "Succeeded")
        assert conds(lint)["Succeeded"] == ("True", "Completed") and lint["status"]["finishedAt"]

        # Orchestration: valid, its references resolved
        orch = await current(client, ORCHESTRATIONS, ns, "sample-orchestration", "Ready")
        assert conds(orch)["Ready"] == ("True", "ValidSpec")
        assert conds(orch)["ReferencesResolved"][0] == "True"

        # OrchestrationRun: implement (AgentRun) → notify (ToolRun) → Succeeded
        run = await current(client, ORCHESTRATIONRUNS, ns, "sample-orchestration-run", "Running")
        implement = "sample-orchestration-run-implement-1"

        async def child(ref: ResourceRef, name: str) -> dict[str, Any] | None:
            try:
                found: dict[str, Any] = await client.get(ref, name, ns)
            except NotFoundError:
                return None
            return found

        agentrun = await eventually(lambda: child(AGENTRUNS, implement), what="the implement AgentRun")
        assert agentrun["metadata"]["ownerReferences"][0]["uid"] == run["metadata"]["uid"]
        assert agentrun["spec"]["parameters"]["repository"] == "proompteng/lab"
        await set_phase(client, AGENTRUNS, ns, implement, "Succeeded")
        notify = "sample-orchestration-run-notify-1"
        await eventually(lambda: child(TOOLRUNS, notify), what="the notify ToolRun")
        await finish_toolrun(client, ns, notify)
        run = await current(client, ORCHESTRATIONRUNS, ns, "sample-orchestration-run", "Succeeded")
        assert conds(run)["Succeeded"] == ("True", "Completed")
        assert {s["name"]: s["phase"] for s in run["status"]["stepStatuses"]} == {
            "implement": "Succeeded",
            "notify": "Succeeded",
        }
        for type_ in ("Running", "InProgress", "Waiting", "Failed", "Warning"):
            assert conds(run)[type_][0] == "False", type_

        # ApprovalPolicy: valid
        policy = await current(client, APPROVALPOLICIES, ns, "default-approval", "Active")
        assert conds(policy)["Ready"] == ("True", "Active")

        # SignalDelivery: delivered once its Signal exists; the Signal records it
        delivery = await current(client, SIGNALDELIVERIES, ns, "approval-1", "Delivered")
        assert delivery["status"]["deliveredAt"]

        async def signal_recorded() -> dict[str, Any] | None:
            obj = await current(client, SIGNALS, ns, "human-approval", "Active")
            return obj if (obj.get("status") or {}).get("lastDeliveryAt") else None

        signal = await eventually(signal_recorded, what="the Signal's lastDeliveryAt")
        assert cond(signal, "Ready")["status"] == "True"

        # Budget: valid, nothing counts against it (no sample names it), within its limits, 24 h window
        budget = await current(client, BUDGETS, ns, "default-budget", "Active")
        assert conds(budget)["Exceeded"] == ("False", "WithinLimits")
        assert conds(budget)["Ready"][0] == "True"
        assert all(Decimal(v) == 0 for v in budget["status"]["used"].values())
        assert budget["status"]["windowStart"]
