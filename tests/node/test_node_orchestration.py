"""One orchestration for real: a ToolRun step whose container reports outputs in its termination message, then
an AgentRun step that takes one of them as a parameter, both in real containers on the node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from kubernetes_asyncio import client as k8s

from jangar.api.refs import (
    AGENTPROVIDERS,
    AGENTS,
    IMPLEMENTATIONSPECS,
    ORCHESTRATIONRUNS,
    ORCHESTRATIONS,
    TOOLS,
)
from jangar.dev.cluster import LocalCluster
from jangar.runtime import Client
from tests.envtest.controllers_fixtures import running_controller, settings_for
from tests.node.jobs import default_service_account
from tests.support.commands import run_command
from tests.support.crds import install_crds
from tests.support.waiting import eventually

BUSYBOX = "local.jangar.dev/busybox:1"
TIMEOUT = 240.0


@pytest_asyncio.fixture
async def client(node_client: k8s.ApiClient) -> AsyncIterator[Client]:
    yield Client(node_client, timeout=15, field_manager="test")


async def test_an_orchestration_runs_a_toolrun_then_an_agentrun_in_real_containers(
    node_cluster: LocalCluster, client: Client, node_client: k8s.ApiClient, node_namespace: str
) -> None:
    install_crds(node_cluster.kubeconfig)
    ns = node_namespace
    await default_service_account(k8s.CoreV1Api(node_client), ns)
    report = 'printf \'{"branch": "codex/%s"}\' {{parameters.issue}} > /dev/termination-log'
    tool = {
        "metadata": {"name": "brancher", "namespace": ns},
        "spec": {"image": BUSYBOX, "command": ["/bin/sh", "-c"], "args": [f"echo tool ran; {report}"]},
    }
    await client.create(TOOLS, tool)
    provider = {
        "metadata": {"name": "shell", "namespace": ns},
        "spec": {"binary": "/bin/sh", "argsTemplate": ["-c", "echo agent works on {{parameters.branch}}"]},
    }
    await client.create(AGENTPROVIDERS, provider)
    await client.create(
        AGENTS, {"metadata": {"name": "coder", "namespace": ns}, "spec": {"providerRef": {"name": "shell"}}}
    )
    await client.create(
        IMPLEMENTATIONSPECS, {"metadata": {"name": "task", "namespace": ns}, "spec": {"text": "x"}}
    )
    steps: list[dict[str, Any]] = [
        {"name": "prepare", "kind": "ToolRun", "toolRef": {"name": "brancher"}},
        {
            "name": "implement",
            "kind": "AgentRun",
            "dependsOn": ["prepare"],
            "agentRef": {"name": "coder"},
            "implementationSpecRef": {"name": "task"},
            "with": {"branch": "{{steps.prepare.outputs.branch}}"},
        },
    ]
    await client.create(
        ORCHESTRATIONS, {"metadata": {"name": "ship", "namespace": ns}, "spec": {"steps": steps}}
    )
    settings = settings_for(
        ns, JANGAR_AGENT_RUNNER_IMAGE=BUSYBOX, JANGAR_AGENT_RUNNER_IMAGE_PULL_POLICY="Never"
    )
    async with running_controller(node_cluster.kubeconfig, settings):
        run = {
            "metadata": {"name": "ship-7", "namespace": ns},
            "spec": {"orchestrationRef": {"name": "ship"}, "parameters": {"issue": "7"}},
        }
        await client.create(ORCHESTRATIONRUNS, run)

        async def finished() -> dict[str, Any] | None:
            obj = await client.get(ORCHESTRATIONRUNS, "ship-7", ns)
            phase = (obj.get("status") or {}).get("phase")
            return obj if phase in ("Succeeded", "Failed", "Cancelled") else None

        done = await eventually(finished, timeout=TIMEOUT, what="the OrchestrationRun to end")
    status = done["status"]
    assert status["phase"] == "Succeeded", status
    by_step = {s["name"]: s for s in status["stepStatuses"]}
    assert by_step["prepare"]["outputs"] == {"branch": "codex/7"}, by_step
    agent_run = by_step["implement"]["resourceRef"]["name"]
    logs = await run_command(
        "jangar.agentctl", "--kubeconfig", str(node_cluster.kubeconfig), "-n", ns, "run", "logs", agent_run
    )
    assert logs.returncode == 0, logs.stderr
    assert "agent works on codex/7" in logs.stdout
