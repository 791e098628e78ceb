"""Teardown undoes every host change of the node (bridge, iptables chains, mounts, cgroups, sysctls, host
dirs, processes), after a normal run and after a failed start. These tests need the host to themselves, so
they stop the session's node cluster (the next test needing it starts a new one)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from kubernetes_asyncio import client as k8s

from jangar.dev.cluster import LocalCluster, stop_cluster
from jangar.dev.node import BRIDGE, host_leftovers
from jangar.dev.processes import StartupError
from tests.conftest import _client
from tests.node.conftest import NodeSession, require_node_host
from tests.node.jobs import busybox_job, run_job, start_job


async def test_teardown_with_pods_running_leaves_nothing_on_the_host(node_session: NodeSession) -> None:
    cluster = node_session.get()
    api = await _client(cluster)
    try:
        # A pod still running at teardown: its sandbox, veth, mounts and cgroups must all go.
        core = k8s.CoreV1Api(api)
        await core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name="teardown")))
        job = busybox_job("sleeper", "echo up; sleep 600")
        await start_job(api, "teardown", job)
    finally:
        await api.close()
    during = host_leftovers(cluster.workdir)
    # the check sees what a node changes on the host (or an empty result after teardown proves nothing)
    assert any(item.startswith(f"bridge {BRIDGE}") for item in during), during
    assert any("kubepods" in item for item in during), during
    assert any(item.startswith("mount ") for item in during), during
    assert any(item.startswith("process ") for item in during), during
    started = time.monotonic()
    left = node_session.stop()
    print(f"teardown: {time.monotonic() - started:.1f}s; timings {cluster.timings}")
    assert left == []


class Injected(BaseException):
    """A failure injected into `up()` (BaseException: the readiness poll must not swallow it)."""


def test_a_start_failing_after_containerd_leaves_nothing(node_session: NodeSession, tmp_path: Path) -> None:
    node_session.stop()
    require_node_host()
    cluster = LocalCluster(
        tmp_path / "c", node=True, nodes=0, node_images={"local.jangar.dev/missing": tmp_path / "absent.tar"}
    )
    with pytest.raises(StartupError, match="ctr images import"):
        cluster.up()
    assert host_leftovers(cluster.workdir) == []


def test_a_start_failing_after_the_node_is_ready_leaves_nothing(
    node_session: NodeSession, tmp_path: Path
) -> None:
    node_session.stop()
    require_node_host()

    class FailsWhenReady(LocalCluster):
        def _real_node_ready(self) -> bool:
            if super()._real_node_ready():
                raise Injected("node Ready, then the start fails")
            return False

    cluster = FailsWhenReady(tmp_path / "c", node=True, nodes=1)
    with pytest.raises(Injected):
        cluster.up()
    assert host_leftovers(cluster.workdir) == []


async def test_down_from_another_process_undoes_the_node(node_session: NodeSession, tmp_path: Path) -> None:
    """`jangar dev cluster down` runs in another process: it finds the node from the workdir's files."""
    node_session.stop()
    require_node_host()
    cluster = LocalCluster(tmp_path / "c", node=True, nodes=0).up()
    api = await _client(cluster)
    try:
        await run_job(api, "default", busybox_job("one", "echo one"))
    finally:
        await api.close()
    stop_cluster(cluster.workdir)  # what the CLI does: no in-memory state of the starting process
    assert host_leftovers(cluster.workdir) == []
