"""The node tier's fixtures: one local cluster with a real node (containerd + kubelet) per session.

`node_session` owns it: started on first use, stopped by the host-cleanup tests (which need the host free to
start clusters of their own) and restarted lazily if a test needs it again, and stopped at the session's end
with a check that nothing is left on the host (`jangar.dev.node.host_leftovers`).
Tests isolate by namespace (`node_namespace`) and run `local.jangar.dev/busybox:1` (`imagePullPolicy: Never`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
from kubernetes_asyncio import client as k8s

from jangar.dev.assets import find_assets
from jangar.dev.cluster import LocalCluster
from jangar.dev.node import host_leftovers, missing_host_binaries
from jangar.dev.postgres import LocalPostgres
from tests.conftest import _client, _namespace, missing

NODE_BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet")


def require_node_host() -> None:
    """Skip locally, fail in CI, when this host cannot run the node shape."""
    absent = find_assets().missing(NODE_BINARIES)
    if absent:
        missing(f"node binaries missing: {', '.join(absent)}; run `bash scripts/k8s-assets.sh`")
    host = missing_host_binaries()
    if host:
        missing(f"node host packages missing: {', '.join(host)}; run `bash scripts/bootstrap.sh`")
    if os.geteuid() != 0:
        missing("the node tier needs root (containerd, runc, mounts, cgroups)")


@dataclass
class NodeSession:
    """The session's node cluster, (re)started on demand; `stop()` tears it down and returns leftovers."""

    base: Path
    cluster: LocalCluster | None = None
    starts: int = 0
    workdirs: list[Path] = field(default_factory=list)

    def get(self) -> LocalCluster:
        if self.cluster is None:
            require_node_host()
            self.starts += 1
            workdir = self.base / f"cluster-{self.starts}"
            self.workdirs.append(workdir)
            # one tainted kwok node beside the real one: the fake nodes must not attract real pods
            self.cluster = LocalCluster(workdir, node=True, nodes=1).up()
        return self.cluster

    def stop(self) -> list[str]:
        if self.cluster is None:
            return []
        cluster, self.cluster = self.cluster, None
        cluster.down()
        return host_leftovers(cluster.workdir)


@pytest.fixture(scope="session")
def node_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeSession]:
    session = NodeSession(tmp_path_factory.mktemp("node"))
    yield session
    session.stop()
    left = [f"{w}: {item}" for w in session.workdirs for item in host_leftovers(w)]
    assert not left, "the node tier left things on the host:\n" + "\n".join(left)


@pytest.fixture
def node_cluster(node_session: NodeSession) -> LocalCluster:
    """The running node cluster (started if needed)."""
    return node_session.get()


@pytest_asyncio.fixture
async def node_client(node_cluster: LocalCluster) -> AsyncIterator[k8s.ApiClient]:
    api = await _client(node_cluster)
    yield api
    await api.close()


@pytest_asyncio.fixture
async def node_namespace(node_client: k8s.ApiClient) -> AsyncIterator[str]:
    async for name in _namespace(node_client):
        yield name


@pytest.fixture
def node_postgres(node_cluster: LocalCluster) -> Iterator[LocalPostgres]:
    """Postgres on the node address too (its own temp dir: initdb runs as an unprivileged user)."""
    assert node_cluster.real_node is not None
    pg = LocalPostgres(listen=("127.0.0.1", node_cluster.real_node.node_ip)).start()
    try:
        yield pg
    finally:
        pg.stop()
