"""The ToolRun controller on the kwok cluster: the real Job controller, scheduler, garbage collector and fake
kubelet run the ToolRun's Job (kwok stages: Pods succeed; reserved images fail or take 2 s)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from jangar.api.contract import LABEL_TOOL_RUN
from jangar.api.refs import TOOLRUNS, TOOLS
from jangar.controllers.kinds import CONFIGMAPS, JOBS, PODS
from jangar.dev.cluster import LocalCluster
from jangar.dev.kwok_stages import FAIL_IMAGE, SLOW_IMAGE
from jangar.runtime import Client, NotFoundError
from tests.envtest.controllers_fixtures import cond, eventually, running_controller, settings_for

EXAMPLES = Path(__file__).resolve().parents[2] / "charts" / "agents" / "examples"


def example(name: str, ns: str) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    obj["metadata"]["namespace"] = ns
    return obj


async def wait_toolrun(
    client: Client, ns: str, name: str, *phases: str, timeout: float = 60
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        obj: dict[str, Any] = await client.get(TOOLRUNS, name, ns)
        return obj if (obj.get("status") or {}).get("phase") in phases else None

    found: dict[str, Any] = await eventually(check, timeout=timeout, what=f"toolrun {name} in {phases}")
    return found


async def test_the_chart_examples_run_to_success(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns)):
        tool = await client.create(TOOLS, example("tool-sample.yaml", ns))
        run = await client.create(TOOLRUNS, example("toolrun-sample.yaml", ns))
        name, tool_name = run["metadata"]["name"], tool["metadata"]["name"]

        async def tool_ready() -> bool:
            obj = await client.get(TOOLS, tool_name, ns)
            return (obj.get("status") or {}).get("phase") == "Ready"

        assert await eventually(tool_ready, what="sample Tool Ready")
        done = await wait_toolrun(client, ns, name, "Succeeded", "Failed")
        assert done["status"]["phase"] == "Succeeded", done["status"]
        assert cond(done, "Succeeded")["reason"] == "Completed"
        assert done["status"]["startedAt"] and done["status"]["finishedAt"]
        assert done["status"]["observedGeneration"] == done["metadata"]["generation"]

        job = await client.get(JOBS, f"{name}-job", ns)
        container = job["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == ['echo "linting ./src"']  # {{parameters.message}} from the sample
        pods = (await client.list(PODS, ns, label_selector=f"{LABEL_TOOL_RUN}={name}")).items
        assert pods and all(p["metadata"]["labels"]["job-name"] == f"{name}-job" for p in pods)

        async def ttl() -> Any:
            return (await client.get(JOBS, f"{name}-job", ns))["spec"].get("ttlSecondsAfterFinished")

        assert await eventually(ttl, what="job ttl") == 600
        assert (await client.get(CONFIGMAPS, f"{name}-spec", ns))["data"]["run.json"]

        # Deleting the ToolRun lets the garbage collector remove its Job and ConfigMap (owner references).
        await client.delete(TOOLRUNS, name, ns)

        async def children_gone() -> bool:
            for ref, child in ((JOBS, f"{name}-job"), (CONFIGMAPS, f"{name}-spec")):
                try:
                    await client.get(ref, child, ns)
                except NotFoundError:
                    continue
                return False
            return True

        assert await eventually(children_gone, timeout=60, what="children garbage-collected")


async def test_a_failing_tool_and_a_tool_over_its_deadline_fail_with_their_reasons(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns)):
        await client.create(
            TOOLS,
            {"metadata": {"name": "fails", "namespace": ns}, "spec": {"image": FAIL_IMAGE, "command": ["x"]}},
        )
        await client.create(
            TOOLS,
            {
                "metadata": {"name": "slow", "namespace": ns},
                "spec": {"image": SLOW_IMAGE, "command": ["sleep", "10"], "timeoutSeconds": 1},
            },
        )
        for run, tool in (("fail-run", "fails"), ("slow-run", "slow")):
            await client.create(
                TOOLRUNS, {"metadata": {"name": run, "namespace": ns}, "spec": {"toolRef": {"name": tool}}}
            )

        failed = await wait_toolrun(client, ns, "fail-run", "Failed", "Succeeded")
        assert cond(failed, "Failed")["reason"] == "BackoffLimitExceeded", failed["status"]
        assert "exited with code 1" in cond(failed, "Failed")["message"]
        late = await wait_toolrun(client, ns, "slow-run", "Failed", "Succeeded")
        assert cond(late, "Failed")["reason"] == "DeadlineExceeded", late["status"]
        assert (await client.get(JOBS, "slow-run-job", ns))["spec"]["activeDeadlineSeconds"] == 1
