"""The Orchestration and OrchestrationRun controllers against a real API server.

The ToolRun controller runs in the same manager (as in production): ToolRun steps get real ToolRuns whose
Jobs the test finishes the way the Job controller and the kubelet would (`finish_toolrun`: a terminated Pod
with the tool's termination message, then the Job's status), so outputs travel ToolRun → step → next step.
The AgentRun controller is off: AgentRun children are played by patching their status. envtest has no
garbage collector, so ownership is asserted through the ownerReferences (GC itself is proven on the kwok
tier).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from jangar.api.contract import (
    ANNOTATION_CANCEL,
    ANNOTATION_ORCHESTRATION_ANCESTRY,
    LABEL_ORCHESTRATION_RUN,
    LABEL_ORCHESTRATION_STEP,
)
from jangar.api.refs import (
    APPROVALPOLICIES,
    ORCHESTRATIONRUNS,
    ORCHESTRATIONS,
    SIGNALDELIVERIES,
    SIGNALS,
    TOOLRUNS,
    TOOLS,
)
from jangar.controllers.kinds import EVENTS, JOBS
from jangar.dev.cluster import LocalCluster
from jangar.runtime import Client, NotFoundError, ResourceRef
from jangar.scheduler.toolrun_job import toolrun_job_name
from jangar.settings import ControllerTuning
from tests.envtest.controllers_fixtures import (
    ControllerProcess,
    cond,
    eventually,
    running_controller,
    settings_for,
)
from tests.envtest.test_controllers_agentrun import finish_job
from tests.envtest.test_controllers_toolrun import finish_pod

TUNING = ControllerTuning(agentrun_workers=4, reference_grace_seconds=30.0)


def _settings(ns: str) -> Any:
    return settings_for(ns, JANGAR_AGENTS_CONTROLLER_ENABLED="false")


@pytest_asyncio.fixture
async def orch_controller(
    envtest: LocalCluster, namespace: str, client: Client
) -> AsyncIterator[ControllerProcess]:
    async with running_controller(envtest.kubeconfig, _settings(namespace), TUNING) as proc:
        yield proc


def meta(ns: str, name: str) -> dict[str, Any]:
    return {"name": name, "namespace": ns}


async def create_orchestration(client: Client, ns: str, name: str, steps: list[dict[str, Any]]) -> None:
    await client.create(ORCHESTRATIONS, {"metadata": meta(ns, name), "spec": {"steps": steps}})


async def create_run(client: Client, ns: str, name: str, orch: str, **params: str) -> dict[str, Any]:
    body = {"metadata": meta(ns, name), "spec": {"orchestrationRef": {"name": orch}, "parameters": params}}
    created: dict[str, Any] = await client.create(ORCHESTRATIONRUNS, body)
    return created


async def get(client: Client, ref: ResourceRef, ns: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = await client.get(ref, name, ns)
    return obj


async def wait_run(client: Client, ns: str, name: str, *phases: str, timeout: float = 40.0) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        obj = await get(client, ORCHESTRATIONRUNS, ns, name)
        return obj if (obj.get("status") or {}).get("phase") in phases else None

    found: dict[str, Any] = await eventually(check, timeout=timeout, what=f"{name} in {phases}")
    return found


async def wait_step(
    client: Client, ns: str, run: str, step: str, phase: str, timeout: float = 40.0
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        obj = await get(client, ORCHESTRATIONRUNS, ns, run)
        for entry in (obj.get("status") or {}).get("stepStatuses") or ():
            if entry["name"] == step and entry.get("phase") == phase:
                return obj
        return None

    found: dict[str, Any] = await eventually(check, timeout=timeout, what=f"{run}/{step} {phase}")
    return found


def steps(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in (obj.get("status") or {}).get("stepStatuses") or ()}


async def wait_child(client: Client, ref: ResourceRef, ns: str, name: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        items = (await client.list(ref, ns)).items
        return next((i for i in items if i["metadata"]["name"] == name), None)

    found: dict[str, Any] = await eventually(check, timeout=30, what=f"{ref.kind} {name}")
    return found


async def set_phase(client: Client, ref: ResourceRef, ns: str, name: str, phase: str, **status: Any) -> None:
    await client.patch_status(ref, name, {"status": {"phase": phase, **status}}, namespace=ns)


async def create_tool(client: Client, ns: str, name: str) -> None:
    await client.create(TOOLS, {"metadata": meta(ns, name), "spec": {"image": "alpine", "command": ["true"]}})


async def finish_toolrun(
    client: Client, ns: str, name: str, *, ok: bool = True, outputs: dict[str, Any] | None = None
) -> None:
    """Play the Job controller and the kubelet for ToolRun `name`: once the ToolRun controller made its Job,
    a Pod terminates (with `{"outputs": ...}` as its termination message) and the Job completes or fails."""
    job_name = toolrun_job_name(name)

    async def job() -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = await client.get(JOBS, job_name, ns)
        except NotFoundError:
            return None
        return found

    found = await eventually(job, timeout=30, what=f"Job {job_name} of ToolRun {name}")
    message = json.dumps({"outputs": outputs}) if outputs is not None else None
    await finish_pod(client, ns, found, message=message, exit_code=0 if ok else 3)
    await finish_job(client, ns, job_name, ok=ok)


async def test_orchestration_status_names_missing_references_and_turns_ready(
    orch_controller: ControllerProcess, client: Client, namespace: str
) -> None:
    ns = namespace
    await create_orchestration(
        client,
        ns,
        "bad",
        [
            {"name": "a", "kind": "ToolRun", "toolRef": {"name": "t"}, "dependsOn": ["b"]},
            {"name": "b", "kind": "ToolRun", "toolRef": {"name": "t"}, "dependsOn": ["a"]},
        ],
    )
    await create_orchestration(
        client, ns, "good", [{"name": "a", "kind": "ToolRun", "toolRef": {"name": "echo"}}]
    )

    async def reason(name: str, want: str) -> dict[str, Any] | None:
        obj = await get(client, ORCHESTRATIONS, ns, name)
        return obj if cond(obj, "Ready").get("reason") == want else None

    bad = await eventually(lambda: reason("bad", "DependencyCycle"), what="cycle reported")
    assert bad["status"]["phase"] == "Invalid" and cond(bad, "InvalidSpec")["status"] == "True"
    good = await eventually(lambda: reason("good", "MissingReferences"), what="missing tool reported")
    assert good["status"]["phase"] == "Pending" and "Tool echo" in cond(good, "ReferencesResolved")["message"]
    await client.create(
        TOOLS, {"metadata": meta(ns, "echo"), "spec": {"image": "alpine", "command": ["true"]}}
    )
    good = await eventually(lambda: reason("good", "ValidSpec"), what="ready once the tool exists")
    assert good["status"]["phase"] == "Ready" and cond(good, "ReferencesResolved")["status"] == "True"
    assert good["status"]["observedGeneration"] == good["metadata"]["generation"]


async def test_a_run_creates_owned_children_passes_outputs_and_succeeds(
    orch_controller: ControllerProcess, client: Client, namespace: str
) -> None:
    ns = namespace
    await client.create(SIGNALS, {"metadata": meta(ns, "go"), "spec": {"channel": "test"}})
    await create_tool(client, ns, "echo")
    await create_orchestration(
        client,
        ns,
        "flow",
        [
            {"name": "start", "kind": "Checkpoint"},
            {"name": "wait", "kind": "SignalWait", "signalRef": "go", "dependsOn": ["start"]},
            {
                "name": "a",
                "kind": "ToolRun",
                "toolRef": {"name": "echo"},
                "dependsOn": ["wait"],
                "with": {"who": "{{steps.wait.outputs.user}}", "repo": "{{parameters.repo}}"},
            },
            {"name": "b", "kind": "ToolRun", "toolRef": {"name": "echo"}, "dependsOn": ["wait"]},
            {
                "name": "end",
                "kind": "Checkpoint",
                "dependsOn": ["a", "b"],
                "with": {"sha": "{{steps.a.outputs.sha}}"},
            },
        ],
    )
    run = await create_run(client, ns, "r1", "flow", repo="lab")
    waiting = await wait_step(client, ns, "r1", "wait", "Running")
    assert cond(waiting, "Waiting")["reason"] == "AwaitingSignal"
    assert steps(waiting)["start"]["phase"] == "Succeeded"
    assert (await client.list(TOOLRUNS, ns)).items == []
    await client.create(
        SIGNALDELIVERIES,
        {"metadata": meta(ns, "d1"), "spec": {"signalRef": {"name": "go"}, "payload": {"user": "ann"}}},
    )
    a = await wait_child(client, TOOLRUNS, ns, "r1-a-1")
    b = await wait_child(client, TOOLRUNS, ns, "r1-b-1")
    for child, step in ((a, "a"), (b, "b")):
        (owner,) = child["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
            "OrchestrationRun",
            "r1",
            run["metadata"]["uid"],
            True,
        )
        assert child["metadata"]["labels"][LABEL_ORCHESTRATION_RUN] == "r1"
        assert child["metadata"]["labels"][LABEL_ORCHESTRATION_STEP] == step
    assert a["spec"]["parameters"] == {"repo": "lab", "who": "ann"}
    running = await wait_step(client, ns, "r1", "wait", "Succeeded")  # children are created before the status
    assert steps(running)["wait"]["outputs"] == {"user": "ann"}
    await finish_toolrun(client, ns, "r1-a-1", outputs={"sha": "abc123"})
    await finish_toolrun(client, ns, "r1-b-1")
    done = await wait_run(client, ns, "r1", "Succeeded", "Failed")
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert cond(done, "Succeeded")["reason"] == "Completed"
    for type_ in ("Running", "InProgress", "Waiting", "Failed", "Progressing"):
        assert cond(done, type_)["status"] == "False", type_
    assert done["status"]["startedAt"] and done["status"]["finishedAt"] and done["status"]["runId"] == "r1"
    assert {s["phase"] for s in steps(done).values()} == {"Succeeded"}
    assert steps(done)["a"]["resourceRef"]["uid"] == a["metadata"]["uid"]
    assert steps(done)["a"]["outputs"] == {"sha": "abc123"}  # the ToolRun's status.outputs
    assert steps(done)["end"]["outputs"] == {"sha": "abc123"}
    assert len((await client.list(TOOLRUNS, ns)).items) == 2


async def test_a_failing_step_retries_with_backoff_then_fails_the_run(
    orch_controller: ControllerProcess, client: Client, namespace: str
) -> None:
    ns = namespace
    await create_orchestration(
        client,
        ns,
        "flaky",
        [{"name": "t", "kind": "ToolRun", "toolRef": {"name": "x"}, "retries": 1, "retryBackoffSeconds": 2}],
    )
    await create_tool(client, ns, "x")
    await create_run(client, ns, "r2", "flaky")
    await wait_child(client, TOOLRUNS, ns, "r2-t-1")
    await finish_toolrun(client, ns, "r2-t-1", ok=False)
    retrying = await wait_step(client, ns, "r2", "t", "Retrying")
    assert steps(retrying)["t"]["nextRetryAt"] and steps(retrying)["t"]["reason"] == "ToolRunFailed"
    assert "BackoffLimitExceeded" in steps(retrying)["t"]["message"]  # the ToolRun's own reason
    await wait_child(client, TOOLRUNS, ns, "r2-t-2")  # woken by requeue_after at nextRetryAt
    await finish_toolrun(client, ns, "r2-t-2", ok=False)
    done = await wait_run(client, ns, "r2", "Failed")
    assert cond(done, "Failed")["reason"] == "RetriesExhausted"
    assert steps(done)["t"]["attempt"] == 2

    async def step_failed_events() -> list[dict[str, Any]] | None:
        items = [e for e in (await client.list(EVENTS, ns)).items if e.get("reason") == "StepFailed"]
        return items or None

    events = await eventually(step_failed_events, what="StepFailed events")
    assert {e["type"] for e in events} == {"Warning"}
    assert any("step t" in e["message"] for e in events)


async def test_approval_gate_passes_on_approval_and_fails_on_rejection(
    orch_controller: ControllerProcess, client: Client, namespace: str
) -> None:
    ns = namespace
    await client.create(APPROVALPOLICIES, {"metadata": meta(ns, "human"), "spec": {"mode": "manual"}})
    await create_orchestration(
        client,
        ns,
        "gated",
        [
            {"name": "gate", "kind": "ApprovalGate", "policyRef": "human"},
            {
                "name": "after",
                "kind": "Checkpoint",
                "dependsOn": ["gate"],
                "with": {"by": "{{steps.gate.outputs.decidedBy}}"},
            },
        ],
    )
    for run, verdict in (("yes", "approved"), ("no", "rejected")):
        await create_run(client, ns, run, "gated")
        waiting = await wait_step(client, ns, run, "gate", "Running")
        assert cond(waiting, "Waiting")["reason"] == "AwaitingApproval"
        await client.create(
            SIGNALDELIVERIES,
            {
                "metadata": meta(ns, f"{run}-gate-decision"),
                "spec": {
                    "signalRef": {"name": "human"},
                    "deliveryId": f"approval:{run}:gate",
                    "payload": {"decision": verdict, "decidedBy": "alice", "reason": "checked"},
                },
            },
        )
    yes = await wait_run(client, ns, "yes", "Succeeded", "Failed")
    assert yes["status"]["phase"] == "Succeeded"
    assert steps(yes)["gate"]["approval"]["decidedBy"] == "alice"
    assert steps(yes)["after"]["outputs"] == {"by": "alice"}
    no = await wait_run(client, ns, "no", "Succeeded", "Failed")
    assert no["status"]["phase"] == "Failed" and cond(no, "Failed")["reason"] == "ApprovalRejected"
    assert steps(no)["gate"]["approval"]["decision"] == "rejected"


async def test_cancel_cascades_to_running_children(
    orch_controller: ControllerProcess, client: Client, namespace: str
) -> None:
    ns = namespace
    await create_tool(client, ns, "x")
    await create_orchestration(
        client, ns, "long", [{"name": "t", "kind": "ToolRun", "toolRef": {"name": "x"}}]
    )
    await create_run(client, ns, "r3", "long")
    await wait_child(client, TOOLRUNS, ns, "r3-t-1")

    async def child_running() -> bool:
        return (await get(client, TOOLRUNS, ns, "r3-t-1")).get("status", {}).get("phase") == "Running"

    await eventually(child_running, what="the ToolRun's Job running")
    await client.patch(
        ORCHESTRATIONRUNS, "r3", {"metadata": {"annotations": {ANNOTATION_CANCEL: "true"}}}, namespace=ns
    )
    done = await wait_run(client, ns, "r3", "Cancelled")
    assert cond(done, "Failed")["reason"] == "Cancelled" and done["status"]["finishedAt"]
    assert steps(done)["t"]["phase"] == "Cancelled"
    child = await get(client, TOOLRUNS, ns, "r3-t-1")
    assert (child["metadata"].get("annotations") or {}).get(ANNOTATION_CANCEL) == "true"
    assert child["status"]["phase"] == "Cancelled"  # stopped by the ToolRun controller: its Job deleted

    async def job_gone() -> bool:
        try:
            await client.get(JOBS, toolrun_job_name("r3-t-1"), ns)
        except NotFoundError:
            return True
        return False

    await eventually(job_gone, what="the cancelled ToolRun's Job deleted")


async def _complete_children(client: Client, ns: str, run: str, stop: asyncio.Event, delay: float) -> None:
    """Play the Job controller and kubelet: every ToolRun Job of `run` completes `delay` s after it appears."""
    seen: dict[str, float] = {}
    done: set[str] = set()
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        items = (await client.list(TOOLRUNS, ns, label_selector=f"{LABEL_ORCHESTRATION_RUN}={run}")).items
        for item in items:
            name = item["metadata"]["name"]
            if name in done or not ((item.get("status") or {}).get("jobRef") or {}).get("name"):
                continue
            first = seen.setdefault(name, loop.time())
            if loop.time() - first >= delay:
                with contextlib.suppress(Exception):
                    await finish_toolrun(client, ns, name)
                    done.add(name)
        await asyncio.sleep(0.2)


async def test_a_controller_restart_in_a_20_step_orchestration_duplicates_nothing(
    envtest: LocalCluster, client: Client, namespace: str
) -> None:
    ns = namespace
    # 10 levels of 2 parallel steps, each level depending on the one before
    chain: list[dict[str, Any]] = []
    for level in range(10):
        for side in ("l", "r"):
            step: dict[str, Any] = {"name": f"s{level}{side}", "kind": "ToolRun", "toolRef": {"name": "x"}}
            if level:
                step["dependsOn"] = [f"s{level - 1}l", f"s{level - 1}r"]
            chain.append(step)
    await create_orchestration(client, ns, "twenty", chain)
    await create_tool(client, ns, "x")
    stop = asyncio.Event()
    worker = asyncio.create_task(_complete_children(client, ns, "big", stop, delay=0.3))
    try:
        first = await ControllerProcess(envtest.kubeconfig, _settings(ns), TUNING).start()
        await create_run(client, ns, "big", "twenty")

        async def halfway() -> bool:
            return len((await client.list(TOOLRUNS, ns)).items) >= 9

        await eventually(halfway, timeout=60, what="half the steps started")
        await first.kill()
        async with running_controller(envtest.kubeconfig, _settings(ns), TUNING):
            done = await wait_run(client, ns, "big", "Succeeded", "Failed", timeout=120)
    finally:
        stop.set()
        await worker
    assert done["status"]["phase"] == "Succeeded", done["status"]
    children = (await client.list(TOOLRUNS, ns)).items
    names = sorted(c["metadata"]["name"] for c in children)
    assert names == sorted(f"big-{s['name']}-1" for s in chain)
    assert all(s["attempt"] == 1 and s["phase"] == "Succeeded" for s in steps(done).values())
    jobs = sorted(j["metadata"]["name"] for j in (await client.list(JOBS, ns)).items)
    assert jobs == sorted(toolrun_job_name(n) for n in names)  # one Job per ToolRun, none twice


async def test_an_a_b_a_sub_orchestration_cycle_fails_with_recursive_sub_orchestration(
    orch_controller: ControllerProcess, client: Client, namespace: str
) -> None:
    ns = namespace
    sub = "SubOrchestration"
    await create_orchestration(
        client, ns, "a", [{"name": "go", "kind": sub, "orchestrationRef": {"name": "b"}}]
    )
    await create_orchestration(
        client, ns, "b", [{"name": "back", "kind": sub, "orchestrationRef": {"name": "a"}}]
    )
    await create_run(client, ns, "top", "a")
    done = await wait_run(client, ns, "top", "Succeeded", "Failed")
    assert done["status"]["phase"] == "Failed"
    assert steps(done)["go"]["reason"] == "SubOrchestrationFailed"
    assert "RecursiveSubOrchestration" in steps(done)["go"]["message"]
    child = await get(client, ORCHESTRATIONRUNS, ns, "top-go-1")
    assert child["metadata"]["annotations"][ANNOTATION_ORCHESTRATION_ANCESTRY] == "a"
    assert child["status"]["phase"] == "Failed"
    assert cond(child, "Failed")["reason"] == "RecursiveSubOrchestration"
    assert "a -> b -> a" in steps(child)["back"]["message"]
    runs = sorted(r["metadata"]["name"] for r in (await client.list(ORCHESTRATIONRUNS, ns)).items)
    assert runs == ["top", "top-go-1"]  # the cycle never got a third run
