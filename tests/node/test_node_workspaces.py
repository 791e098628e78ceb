"""A Workspace for real: its claim is bound by the local provisioner (StorageClass `jangar-local`, a hostPath
PersistentVolume on the node), one run's agent writes into `/workspace/<workspace>` as the image's non-root
user, and a second run in a new pod reads the file back; the bytes are on the volume's host directory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from kubernetes_asyncio import client as k8s

from jangar.api.refs import AGENTPROVIDERS, AGENTRUNS, AGENTS, IMPLEMENTATIONSPECS, WORKSPACES
from jangar.dev.cluster import LocalCluster
from jangar.dev.images import build_script_image
from jangar.runtime import Client
from tests.envtest.controllers_fixtures import running_controller, settings_for, wait_phase
from tests.node.jobs import default_service_account
from tests.support.commands import run_command
from tests.support.crds import install_crds
from tests.support.waiting import eventually

TIMEOUT = 180.0
IMAGE_BASE = "local.jangar.dev/jangar"


@pytest.fixture(scope="module")
def jangar_image() -> tuple[str, Path]:
    return build_script_image("--jangar")


@pytest_asyncio.fixture
async def client(node_client: k8s.ApiClient) -> AsyncIterator[Client]:
    yield Client(node_client, timeout=15, field_manager="test")


async def _provider(client: Client, name: str, ns: str, script: str) -> None:
    provider = {
        "metadata": {"name": name, "namespace": ns},
        "spec": {"binary": "/bin/sh", "argsTemplate": ["-c", script]},
    }
    await client.create(AGENTPROVIDERS, provider)
    agent = {"metadata": {"name": name, "namespace": ns}, "spec": {"providerRef": {"name": name}}}
    await client.create(AGENTS, agent)


def _run(ns: str, name: str, agent: str) -> dict[str, object]:
    spec = {
        "agentRef": {"name": agent},
        "implementationSpecRef": {"name": "task"},
        "runtime": {"type": "job"},
        "workspaceRef": {"name": "shared"},
    }
    return {"metadata": {"name": name, "namespace": ns}, "spec": spec}


async def _logs(cluster: LocalCluster, ns: str, name: str) -> str:
    done = await run_command(
        "jangar.agentctl", "--kubeconfig", str(cluster.kubeconfig), "-n", ns, "run", "logs", name
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def _diagnose(node_client: k8s.ApiClient, ns: str) -> str:
    """The pods' states and the namespace's events: why a run did not finish."""
    core = k8s.CoreV1Api(node_client)
    lines = [
        f"pod {p.metadata.name}: {p.status.phase} {p.status.container_statuses}"
        for p in (await core.list_namespaced_pod(ns)).items
    ]
    lines += [
        f"event {e.involved_object.kind}/{e.involved_object.name}: {e.reason} {e.message}"
        for e in (await core.list_namespaced_event(ns)).items
    ]
    return "\n".join(lines)


async def test_a_run_writes_into_its_workspace_and_the_next_run_reads_it(
    node_cluster: LocalCluster,
    jangar_image: tuple[str, Path],
    client: Client,
    node_client: k8s.ApiClient,
    node_namespace: str,
) -> None:
    install_crds(node_cluster.kubeconfig)
    ref, archive = jangar_image
    node_cluster.import_image(archive, IMAGE_BASE)
    ns = node_namespace
    await default_service_account(k8s.CoreV1Api(node_client), ns)
    await client.create(
        IMPLEMENTATIONSPECS, {"metadata": {"name": "task", "namespace": ns}, "spec": {"text": "x"}}
    )
    await _provider(
        client, "writer", ns, 'echo "written by {{agentRun.name}} as $(id -u)" > /workspace/shared/note.txt'
    )
    await _provider(client, "reader", ns, "cat /workspace/shared/note.txt")
    settings = settings_for(ns, JANGAR_AGENT_RUNNER_IMAGE=ref, JANGAR_AGENT_RUNNER_IMAGE_PULL_POLICY="Never")
    async with running_controller(node_cluster.kubeconfig, settings):
        workspace = {"metadata": {"name": "shared", "namespace": ns}, "spec": {"size": "1Gi"}}
        await client.create(WORKSPACES, workspace)

        async def ready() -> dict[str, object] | None:
            status = (await client.get(WORKSPACES, "shared", ns)).get("status") or {}
            return status if status.get("phase") == "Ready" else None

        status = await eventually(ready, timeout=TIMEOUT, what="the Workspace to be Ready (claim Bound)")
        assert status["claimName"] == "shared", status

        await client.create(AGENTRUNS, _run(ns, "write", "writer"))
        try:
            wrote = await wait_phase(client, ns, "write", "Succeeded", "Failed", timeout=TIMEOUT)
        except AssertionError as err:
            raise AssertionError(f"{err}\n{await _diagnose(node_client, ns)}") from None
        assert wrote["status"]["phase"] == "Succeeded", wrote["status"]

        await client.create(AGENTRUNS, _run(ns, "read", "reader"))
        read = await wait_phase(client, ns, "read", "Succeeded", "Failed", timeout=TIMEOUT)
        assert read["status"]["phase"] == "Succeeded", read["status"]

    assert "written by write as 10001" in await _logs(node_cluster, ns, "read")
    claim = await k8s.CoreV1Api(node_client).read_namespaced_persistent_volume_claim("shared", ns)
    on_host = node_cluster.volumes_dir / str(claim.metadata.uid) / "note.txt"
    assert on_host.read_text().strip() == "written by write as 10001"
