"""Issue 10's "Done when" orchestrations on the kwok cluster, every controller in one manager (AgentRun,
ToolRun, OrchestrationRun, Signal, ApprovalPolicy, Budget), the real Job controller, scheduler and garbage
collector, and kwok's fake kubelet.

Outputs travel for real: `OUTPUTS_IMAGE` Pods terminate with the value of their `KWOK_TERMINATION_MESSAGE`
env var as the termination message (`jangar.dev.kwok_stages`), and that env var is rendered by the
controllers from the step's inputs (a Tool's `env`, an AgentProvider's `envTemplate`). `FAIL_IMAGE` Pods
exit 1, `PULL_BACKOFF_IMAGE` Pods never start (a run that stays Running), `SLOW_IMAGE` Pods take 2 s.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

from jangar.api.contract import ANNOTATION_CANCEL, LABEL_ORCHESTRATION_RUN, LABEL_TOOL_RUN
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
from jangar.conditions import parse_time
from jangar.controllers.kinds import AGENTPROVIDERS, AGENTRUNS, AGENTS, EVENTS, JOBS, PODS
from jangar.dev.cluster import LocalCluster
from jangar.dev.kwok_stages import (
    FAIL_IMAGE,
    OUTPUTS_IMAGE,
    PULL_BACKOFF_IMAGE,
    SLOW_IMAGE,
    TERMINATION_MESSAGE_ENV,
)
from jangar.runtime import Client, NotFoundError, ResourceRef
from jangar.settings import ControllerTuning
from tests.envtest.controllers_fixtures import (
    ControllerProcess,
    apply_basics,
    cond,
    eventually,
    running_controller,
    settings_for,
)

TUNING = ControllerTuning(agentrun_workers=4, reference_grace_seconds=60.0)


def meta(ns: str, name: str) -> dict[str, Any]:
    return {"name": name, "namespace": ns}


async def tool(client: Client, ns: str, name: str, image: str = "alpine:3.20", **spec: Any) -> None:
    body = {"image": image, "command": ["/bin/sh", "-c", "true"], **spec}
    await client.create(TOOLS, {"metadata": meta(ns, name), "spec": body})


async def orchestration(client: Client, ns: str, name: str, steps: list[dict[str, Any]], **spec: Any) -> None:
    await client.create(ORCHESTRATIONS, {"metadata": meta(ns, name), "spec": {"steps": steps, **spec}})


async def start(client: Client, ns: str, name: str, orch: str, **parameters: str) -> None:
    body = {"orchestrationRef": {"name": orch}, "parameters": parameters}
    await client.create(ORCHESTRATIONRUNS, {"metadata": meta(ns, name), "spec": body})


async def get(client: Client, ref: ResourceRef, ns: str, name: str) -> dict[str, Any] | None:
    try:
        obj: dict[str, Any] = await client.get(ref, name, ns)
    except NotFoundError:
        return None
    return obj


async def wait_run(
    client: Client, ns: str, name: str, *phases: str, timeout: float = 120.0
) -> dict[str, Any]:
    wanted = phases or ("Succeeded", "Failed", "Cancelled")

    async def check() -> dict[str, Any] | None:
        obj = await get(client, ORCHESTRATIONRUNS, ns, name)
        return obj if obj and (obj.get("status") or {}).get("phase") in wanted else None

    found: dict[str, Any] = await eventually(check, timeout=timeout, interval=0.5, what=f"{name} in {wanted}")
    return found


async def wait_step(
    client: Client, ns: str, run: str, step: str, phase: str, reason: str | None = None
) -> Any:
    async def check() -> dict[str, Any] | None:
        obj = await get(client, ORCHESTRATIONRUNS, ns, run)
        entry = steps(obj or {}).get(step) or {}
        ok = entry.get("phase") == phase and (reason is None or entry.get("reason") == reason)
        return obj if ok else None

    return await eventually(check, timeout=120, interval=0.5, what=f"{run}/{step} {phase} {reason or ''}")


def steps(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in (obj.get("status") or {}).get("stepStatuses") or ()}


def emitting_tool_env(message: str) -> list[dict[str, str]]:
    return [{"name": TERMINATION_MESSAGE_ENV, "value": message}]


async def test_checkpoint_parallel_agentrun_and_toolrun_and_a_suborchestration_pass_outputs(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns), TUNING):
        await apply_basics(client, ns)
        # an agent whose runner reports {"outputs": {"branch": "feature/<repository>"}}
        await client.create(
            AGENTPROVIDERS,
            {
                "metadata": meta(ns, "emitter"),
                "spec": {
                    "binary": "/usr/local/bin/emit",
                    "argsTemplate": ["{{ parameters.prompt }}"],
                    "envTemplate": {
                        TERMINATION_MESSAGE_ENV: '{"outputs": {"branch": "feature/{{ parameters.repository }}"}}'
                    },
                },
            },
        )
        await client.create(
            AGENTS, {"metadata": meta(ns, "emitter"), "spec": {"providerRef": {"name": "emitter"}}}
        )
        await tool(
            client,
            ns,
            "lint",
            OUTPUTS_IMAGE,
            env=emitting_tool_env('{"outputs": {"report": "{{parameters.target}} is clean"}}'),
        )
        await orchestration(
            client,
            ns,
            "inner",
            [
                {
                    "name": "check",
                    "kind": "Checkpoint",
                    "with": {"summary": "{{parameters.branch}}: {{parameters.lint}}"},
                }
            ],
        )
        await orchestration(
            client,
            ns,
            "outer",
            [
                {"name": "start", "kind": "Checkpoint", "with": {"repo": "{{parameters.repo}}"}},
                {
                    "name": "implement",
                    "kind": "AgentRun",
                    "dependsOn": ["start"],
                    "agentRef": {"name": "emitter"},
                    "implementationSpecRef": {"name": "task"},
                    "workload": {"image": OUTPUTS_IMAGE},
                    "with": {"prompt": "implement", "repository": "{{steps.start.outputs.repo}}"},
                },
                {
                    "name": "lint",
                    "kind": "ToolRun",
                    "dependsOn": ["start"],
                    "toolRef": {"name": "lint"},
                    "with": {"target": "{{steps.start.outputs.repo}}"},
                },
                {
                    "name": "sub",
                    "kind": "SubOrchestration",
                    "dependsOn": ["implement", "lint"],
                    "orchestrationRef": {"name": "inner"},
                    "with": {
                        "branch": "{{steps.implement.outputs.branch}}",
                        "lint": "{{steps.lint.outputs.report}}",
                    },
                },
            ],
        )
        await start(client, ns, "ship", "outer", repo="lab")
        done = await wait_run(client, ns, "ship", timeout=180)
        assert done["status"]["phase"] == "Succeeded", done["status"]
        assert cond(done, "Succeeded")["reason"] == "Completed"
        by = steps(done)
        assert by["start"]["outputs"] == {"repo": "lab"}
        assert by["implement"]["outputs"] == {"branch": "feature/lab"}  # the AgentRun's status.runner.outputs
        assert by["lint"]["outputs"] == {"report": "lab is clean"}  # the ToolRun's status.outputs
        assert by["sub"]["outputs"] == {"check": {"summary": "feature/lab: lab is clean"}}
        # implement and lint started in the same pass, before either finished
        assert by["implement"]["startedAt"] <= by["lint"]["finishedAt"]
        assert by["lint"]["startedAt"] <= by["implement"]["finishedAt"]
        lint = await client.get(TOOLRUNS, "ship-lint-1", ns)
        assert lint["status"]["phase"] == "Succeeded" and lint["spec"]["parameters"]["target"] == "lab"
        sub = await client.get(ORCHESTRATIONRUNS, "ship-sub-1", ns)
        assert sub["spec"]["parameters"]["branch"] == "feature/lab"
        assert sub["metadata"]["ownerReferences"][0]["uid"] == done["metadata"]["uid"]


async def test_a_failing_step_retries_with_growing_backoff_then_fails_the_run_with_retries_exhausted(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns), TUNING):
        await tool(client, ns, "broken", FAIL_IMAGE)
        await orchestration(
            client,
            ns,
            "flaky",
            [
                {
                    "name": "t",
                    "kind": "ToolRun",
                    "toolRef": {"name": "broken"},
                    "retries": 2,
                    "retryBackoffSeconds": 2,
                }
            ],
        )
        await start(client, ns, "f", "flaky")
        done = await wait_run(client, ns, "f", timeout=180)
        assert done["status"]["phase"] == "Failed", done["status"]
        assert cond(done, "Failed")["reason"] == "RetriesExhausted"
        entry = steps(done)["t"]
        assert (entry["attempt"], entry["reason"]) == (3, "RetriesExhausted")
        assert "BackoffLimitExceeded" in entry["message"]
        runs = {n: await client.get(TOOLRUNS, f"f-t-{n}", ns) for n in (1, 2, 3)}
        assert all(r["status"]["phase"] == "Failed" for r in runs.values())
        # each attempt starts no earlier than its backoff after the previous one failed: 2 s, then 4 s
        for n, backoff in ((2, 2), (3, 4)):
            failed = parse_time(runs[n - 1]["status"]["finishedAt"])
            created = parse_time(runs[n]["metadata"]["creationTimestamp"])
            assert failed is not None and created is not None
            assert (created - failed).total_seconds() >= backoff - 1  # timestamps have 1 s resolution

        async def step_failed() -> list[str] | None:
            items = (await client.list(EVENTS, ns)).items
            messages = [e["message"] for e in items if e.get("reason") == "StepFailed"]
            return messages if len(messages) >= 3 else None

        messages = await eventually(step_failed, timeout=30, what="three StepFailed events")
        assert any("attempt 1 failed" in m and "retrying in 2s" in m for m in messages)
        assert any("attempt 2 failed" in m and "retrying in 4s" in m for m in messages)
        assert any("RetriesExhausted" in m for m in messages)


async def test_an_approval_gate_waits_then_passes_on_approval_and_fails_on_rejection(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns), TUNING):
        await client.create(APPROVALPOLICIES, {"metadata": meta(ns, "humans"), "spec": {"mode": "manual"}})
        await tool(client, ns, "deploy")
        await orchestration(
            client,
            ns,
            "gated",
            [
                {"name": "review", "kind": "ApprovalGate", "policyRef": "humans"},
                {
                    "name": "deploy",
                    "kind": "ToolRun",
                    "dependsOn": ["review"],
                    "toolRef": {"name": "deploy"},
                    "with": {"approver": "{{steps.review.outputs.decidedBy}}"},
                },
            ],
        )
        for run in ("yes", "no"):
            await start(client, ns, run, "gated")
            waiting = await wait_step(client, ns, run, "review", "Running", "AwaitingApproval")
            assert waiting["status"]["phase"] == "Running"
            assert cond(waiting, "Waiting")["reason"] == "AwaitingApproval"
        assert (await client.list(TOOLRUNS, ns)).items == []  # nothing after a gate without a decision
        for run, decision in (("yes", "approved"), ("no", "rejected")):
            await client.create(
                SIGNALDELIVERIES,
                {
                    "metadata": meta(ns, f"{run}-review-decision"),
                    "spec": {
                        "signalRef": {"name": "humans"},
                        "deliveryId": f"approval:{run}:review",
                        "payload": {"decision": decision, "decidedBy": "alice", "reason": "looked"},
                    },
                },
            )
        yes = await wait_run(client, ns, "yes", timeout=120)
        assert yes["status"]["phase"] == "Succeeded", yes["status"]
        assert steps(yes)["review"]["approval"]["decidedBy"] == "alice"
        deploy = await client.get(TOOLRUNS, "yes-deploy-1", ns)
        assert (
            deploy["status"]["phase"] == "Succeeded" and deploy["spec"]["parameters"]["approver"] == "alice"
        )
        no = await wait_run(client, ns, "no", timeout=60)
        assert no["status"]["phase"] == "Failed" and cond(no, "Failed")["reason"] == "ApprovalRejected"
        assert steps(no)["deploy"]["phase"] == "Pending"
        assert await get(client, TOOLRUNS, ns, "no-deploy-1") is None


async def test_a_signal_wait_passes_on_delivery_with_its_payload_as_outputs(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns), TUNING):
        await client.create(SIGNALS, {"metadata": meta(ns, "merged"), "spec": {"channel": "github"}})
        await tool(
            client, ns, "announce", OUTPUTS_IMAGE, env=emitting_tool_env('{"said": "{{parameters.text}}"}')
        )
        await orchestration(
            client,
            ns,
            "waits",
            [
                {"name": "wait", "kind": "SignalWait", "signalRef": "merged"},
                {
                    "name": "announce",
                    "kind": "ToolRun",
                    "dependsOn": ["wait"],
                    "toolRef": {"name": "announce"},
                    "with": {"text": "merged {{steps.wait.outputs.pr}}"},
                },
            ],
        )
        await start(client, ns, "w", "waits")
        await wait_step(client, ns, "w", "wait", "Running", "AwaitingSignal")
        await client.create(
            SIGNALDELIVERIES,
            {"metadata": meta(ns, "pr-7"), "spec": {"signalRef": {"name": "merged"}, "payload": {"pr": "7"}}},
        )
        done = await wait_run(client, ns, "w", timeout=120)
        assert done["status"]["phase"] == "Succeeded", done["status"]
        assert steps(done)["wait"]["outputs"] == {"pr": "7"}
        assert steps(done)["wait"]["resourceRef"]["name"] == "pr-7"
        assert steps(done)["announce"]["outputs"] == {"said": "merged 7"}

        async def delivered() -> bool:
            obj = await get(client, SIGNALDELIVERIES, ns, "pr-7")
            return bool(obj and (obj.get("status") or {}).get("phase") == "Delivered")

        await eventually(delivered, what="the delivery marked Delivered")


async def test_cancelling_a_run_stops_its_children_and_deleting_it_removes_them(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns), TUNING):
        await apply_basics(client, ns)
        await tool(client, ns, "stuck", PULL_BACKOFF_IMAGE)  # its Pod never starts: the ToolRun stays Running
        await orchestration(
            client,
            ns,
            "long",
            [
                {"name": "t", "kind": "ToolRun", "toolRef": {"name": "stuck"}},
                {
                    "name": "a",
                    "kind": "AgentRun",
                    "agentRef": {"name": "coder"},
                    "implementationSpecRef": {"name": "task"},
                    "workload": {"image": PULL_BACKOFF_IMAGE},
                    "with": {"prompt": "wait"},
                },
            ],
        )
        await start(client, ns, "c", "long")

        async def children_running() -> bool:
            t = await get(client, TOOLRUNS, ns, "c-t-1")
            a = await get(client, AGENTRUNS, ns, "c-a-1")
            pods = (await client.list(PODS, ns)).items
            running = all(o and (o.get("status") or {}).get("phase") == "Running" for o in (t, a))
            return running and len(pods) == 2

        await eventually(children_running, timeout=90, interval=0.5, what="both children running with Pods")
        await client.patch(
            ORCHESTRATIONRUNS, "c", {"metadata": {"annotations": {ANNOTATION_CANCEL: "true"}}}, namespace=ns
        )
        done = await wait_run(client, ns, "c", "Cancelled", timeout=90)
        assert cond(done, "Failed")["reason"] == "Cancelled"
        assert {s["phase"] for s in steps(done).values()} == {"Cancelled"}
        t = await client.get(TOOLRUNS, "c-t-1", ns)
        a = await client.get(AGENTRUNS, "c-a-1", ns)
        assert t["status"]["phase"] == "Cancelled" and a["status"]["phase"] == "Cancelled"

        async def jobs_gone() -> bool:
            return not (await client.list(JOBS, ns)).items and not (await client.list(PODS, ns)).items

        await eventually(jobs_gone, timeout=90, interval=0.5, what="the children's Jobs and Pods stopped")

        await client.delete(ORCHESTRATIONRUNS, "c", ns)

        async def children_gone() -> bool:
            left = [await get(client, TOOLRUNS, ns, "c-t-1"), await get(client, AGENTRUNS, ns, "c-a-1")]
            return left == [None, None]

        await eventually(children_gone, timeout=90, interval=0.5, what="the children garbage-collected")


async def test_a_budget_exceeded_by_finished_toolruns_holds_the_next_toolrun_and_orchestrationrun(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns), TUNING):
        await client.create(BUDGETS, {"metadata": meta(ns, "compute"), "spec": {"limits": {"cpu": "1"}}})
        await tool(client, ns, "work", SLOW_IMAGE, resources={"requests": {"cpu": "1", "memory": "64Mi"}})
        first = {"toolRef": {"name": "work"}, "budgetRef": {"name": "compute"}}
        await client.create(TOOLRUNS, {"metadata": meta(ns, "first"), "spec": first})

        async def phase_of(ref: ResourceRef, name: str, *phases: str) -> dict[str, Any] | None:
            obj = await get(client, ref, ns, name)
            return obj if obj and (obj.get("status") or {}).get("phase") in phases else None

        done = await eventually(
            lambda: phase_of(TOOLRUNS, "first", "Succeeded", "Failed"), timeout=90, what="first ToolRun done"
        )
        assert done["status"]["phase"] == "Succeeded", done["status"]
        budget = await eventually(
            lambda: phase_of(BUDGETS, "compute", "Exceeded"),
            timeout=60,
            what="Budget exceeded by the ToolRun",
        )
        used = Decimal(budget["status"]["used"]["cpu"])
        assert used >= 1  # 1 core for the Pod's ~2 s
        assert [(e["kind"], e["name"]) for e in budget["status"]["runs"]] == [("ToolRun", "first")]

        # the next ToolRun, and an OrchestrationRun whose Orchestration names the Budget, are held
        await client.create(TOOLRUNS, {"metadata": meta(ns, "second"), "spec": first})
        await orchestration(
            client,
            ns,
            "budgeted",
            [{"name": "w", "kind": "ToolRun", "toolRef": {"name": "work"}}],
            policies={"budgetRef": {"name": "compute"}},
        )
        await start(client, ns, "o", "budgeted")

        async def held(ref: ResourceRef, name: str) -> dict[str, Any] | None:
            obj = await get(client, ref, ns, name)
            return obj if obj and cond(obj, "BudgetExceeded").get("status") == "True" else None

        second = await eventually(lambda: held(TOOLRUNS, "second"), timeout=60, what="second ToolRun held")
        assert second["status"]["phase"] == "Pending" and not second["status"].get("jobRef")
        assert "budget compute cpu exceeded" in cond(second, "BudgetExceeded")["message"]
        orun = await eventually(
            lambda: held(ORCHESTRATIONRUNS, "o"), timeout=60, what="OrchestrationRun held"
        )
        assert orun["status"]["phase"] == "Pending" and cond(orun, "Accepted")["status"] == "False"
        assert await get(client, TOOLRUNS, ns, "o-w-1") is None
        assert not [j for j in (await client.list(JOBS, ns)).items if j["metadata"]["name"] != "first-job"]

        await client.patch(BUDGETS, "compute", {"spec": {"limits": {"cpu": "100000"}}}, namespace=ns)
        finished = await eventually(
            lambda: phase_of(TOOLRUNS, "second", "Succeeded", "Failed"),
            timeout=90,
            what="second ToolRun done",
        )
        assert finished["status"]["phase"] == "Succeeded"
        assert cond(finished, "BudgetExceeded")["status"] == "False"
        orun = await wait_run(client, ns, "o", timeout=120)
        assert orun["status"]["phase"] == "Succeeded", orun["status"]
        assert cond(orun, "BudgetExceeded")["reason"] == "WithinBudget"
        child = await client.get(TOOLRUNS, "o-w-1", ns)
        assert child["spec"]["budgetRef"] == {"name": "compute"}  # the Orchestration's policies.budgetRef

        async def all_counted() -> dict[str, Any] | None:
            obj = await get(client, BUDGETS, ns, "compute")
            names = sorted(e["name"] for e in ((obj or {}).get("status") or {}).get("runs") or ())
            return obj if names == ["first", "o-w-1", "second"] else None

        budget = await eventually(all_counted, timeout=60, what="the three ToolRuns in the ledger")
        assert budget["status"]["phase"] == "Active"
        assert Decimal(budget["status"]["used"]["cpu"]) >= used * 2


async def test_killing_the_controller_in_a_20_step_orchestration_duplicates_nothing(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    chain: list[dict[str, Any]] = []
    for level in range(10):
        for side in ("l", "r"):
            step: dict[str, Any] = {"name": f"s{level}{side}", "kind": "ToolRun", "toolRef": {"name": "x"}}
            if level:
                step["dependsOn"] = [f"s{level - 1}l", f"s{level - 1}r"]
            chain.append(step)
    await tool(client, ns, "x")
    await orchestration(client, ns, "twenty", chain)
    first = await ControllerProcess(kwok_cluster.kubeconfig, settings_for(ns), TUNING).start()
    try:
        await start(client, ns, "big", "twenty")

        async def halfway() -> bool:
            items = (await client.list(TOOLRUNS, ns, label_selector={LABEL_ORCHESTRATION_RUN: "big"})).items
            return len(items) >= 9

        await eventually(halfway, timeout=180, interval=0.5, what="half the steps started")
    finally:
        with contextlib.suppress(Exception):
            await first.kill()
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns), TUNING):
        done = await wait_run(client, ns, "big", timeout=300)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert all(s["attempt"] == 1 and s["phase"] == "Succeeded" for s in steps(done).values())
    toolruns = (await client.list(TOOLRUNS, ns)).items
    assert sorted(t["metadata"]["name"] for t in toolruns) == sorted(f"big-{s['name']}-1" for s in chain)
    assert all(t["status"]["phase"] == "Succeeded" for t in toolruns)
    # one Job per ToolRun (the TTL controller may already have removed some: never two for one run)
    jobs = (await client.list(JOBS, ns, label_selector=LABEL_TOOL_RUN)).items
    per_run = [j["metadata"]["labels"][LABEL_TOOL_RUN] for j in jobs]
    assert len(per_run) == len(set(per_run))
