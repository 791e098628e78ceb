"""Orchestrations on the kwok cluster: the real AgentRun controller turns step AgentRuns into Jobs, kwok's
fake kubelet completes their Pods, and kube-controller-manager's garbage collector removes a deleted run's
children through their owner references."""

from __future__ import annotations

from typing import Any

from jangar.api.contract import LABEL_ORCHESTRATION_RUN
from jangar.api.refs import ORCHESTRATIONRUNS, ORCHESTRATIONS
from jangar.controllers.kinds import AGENTRUNS, JOBS
from jangar.dev.cluster import LocalCluster
from jangar.runtime import Client
from tests.envtest.controllers_fixtures import (
    apply_basics,
    cond,
    eventually,
    running_controller,
    settings_for,
)


def agent_step(name: str, *deps: str, **inputs: str) -> dict[str, Any]:
    step: dict[str, Any] = {
        "name": name,
        "kind": "AgentRun",
        "agentRef": {"name": "coder"},
        "implementationSpecRef": {"name": "task"},
        "with": {"prompt": f"step {name}", **inputs},
    }
    if deps:
        step["dependsOn"] = list(deps)
    return step


async def wait_run(client: Client, ns: str, name: str, timeout: float = 120.0) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        obj: dict[str, Any] = await client.get(ORCHESTRATIONRUNS, name, ns)
        return obj if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed", "Cancelled") else None

    found: dict[str, Any] = await eventually(check, timeout=timeout, interval=0.5, what=f"{name} finished")
    return found


async def test_checkpoint_parallel_agentruns_and_a_suborchestration_succeed_then_gc_removes_children(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns)):
        await apply_basics(client, ns)
        await client.create(
            ORCHESTRATIONS,
            {"metadata": {"name": "inner", "namespace": ns}, "spec": {"steps": [agent_step("x")]}},
        )
        await client.create(
            ORCHESTRATIONS,
            {
                "metadata": {"name": "outer", "namespace": ns},
                "spec": {
                    "steps": [
                        {"name": "start", "kind": "Checkpoint", "with": {"repo": "{{parameters.repo}}"}},
                        agent_step("a", "start", repository="{{steps.start.outputs.repo}}"),
                        agent_step("b", "start"),
                        {
                            "name": "sub",
                            "kind": "SubOrchestration",
                            "orchestrationRef": {"name": "inner"},
                            "dependsOn": ["a", "b"],
                        },
                    ]
                },
            },
        )
        await client.create(
            ORCHESTRATIONRUNS,
            {
                "metadata": {"name": "big", "namespace": ns},
                "spec": {"orchestrationRef": {"name": "outer"}, "parameters": {"repo": "proompteng/lab"}},
            },
        )
        done = await wait_run(client, ns, "big")
        assert done["status"]["phase"] == "Succeeded", done["status"]
        assert cond(done, "Succeeded")["reason"] == "Completed"
        by = {s["name"]: s for s in done["status"]["stepStatuses"]}
        assert by["start"]["outputs"] == {"repo": "proompteng/lab"}
        # a and b ran in parallel: each started before the other finished
        assert by["a"]["startedAt"] <= by["b"]["finishedAt"] and by["b"]["startedAt"] <= by["a"]["finishedAt"]
        a = await client.get(AGENTRUNS, "big-a-1", ns)
        assert a["status"]["phase"] == "Succeeded"
        assert a["spec"]["parameters"]["repository"] == "proompteng/lab"
        sub = await client.get(ORCHESTRATIONRUNS, "big-sub-1", ns)
        assert sub["status"]["phase"] == "Succeeded"
        assert (await client.get(AGENTRUNS, "big-sub-1-x-1", ns))["status"]["phase"] == "Succeeded"
        # one child per step attempt, nothing duplicated
        children = (await client.list(AGENTRUNS, ns, label_selector={LABEL_ORCHESTRATION_RUN: "big"})).items
        assert sorted(c["metadata"]["name"] for c in children) == ["big-a-1", "big-b-1"]

        await client.delete(ORCHESTRATIONRUNS, "big", ns)

        async def all_gone() -> bool:
            names = {o["metadata"]["name"] for o in (await client.list(AGENTRUNS, ns)).items}
            runs = {o["metadata"]["name"] for o in (await client.list(ORCHESTRATIONRUNS, ns)).items}
            jobs = {o["metadata"]["name"] for o in (await client.list(JOBS, ns)).items}
            return not names and not runs and not jobs

        await eventually(all_gone, timeout=90, interval=0.5, what="the run's children garbage-collected")
