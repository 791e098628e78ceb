"""The node shape's rendered configuration (no root, no binaries): every path under the workdir, the
settings this host needs, and the kwok and process-state rules it relies on."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from jangar.dev import node
from jangar.dev.cluster import FAKE_NODE_TAINT, _fake_node
from jangar.dev.pki import Pki
from jangar.dev.processes import ProcessGroup, stop_recorded


def _strings(value: object) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def test_containerd_config_keeps_every_path_under_the_workdir(tmp_path: Path) -> None:
    paths = node.NodePaths(tmp_path / "node")
    config = tomllib.loads(node.containerd_config(paths, Path("/usr/lib/cni")))
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True  # no CAP_SYS_RESOURCE on this VM
    assert cri["netns_mounts_under_state_dir"] is True
    runc = cri["containerd"]["runtimes"]["runc"]["options"]
    assert runc["SystemdCgroup"] is False
    absolute = [s for s in _strings(config) if s.startswith("/")]
    outside = [s for s in absolute if not s.startswith(str(paths.root))]
    assert sorted(outside) == sorted([runc["BinaryName"], "/usr/lib/cni"])
    assert config["grpc"]["address"] == str(paths.socket)


def test_kubelet_config_has_the_settings_this_host_needs(tmp_path: Path) -> None:
    paths = node.NodePaths(tmp_path / "node")
    config = node.kubelet_config(paths, Pki(tmp_path / "pki"), "192.0.2.2", 10250, 10248)
    assert config["containerRuntimeEndpoint"] == f"unix://{paths.socket}"
    assert config["cgroupDriver"] == "cgroupfs"
    assert config["failCgroupV1"] is False and config["failSwapOn"] is False
    assert config["podLogsDir"] == str(paths.pod_logs)  # podLogsDir, not podLogsDirectory
    assert config["imageGCHighThresholdPercent"] == 100  # imported images cannot be pulled again
    assert config["authentication"]["anonymous"] == {"enabled": False}
    assert config["authentication"]["webhook"] == {"enabled": True}
    assert config["authentication"]["x509"]["clientCAFile"].startswith(str(tmp_path))
    assert config["authorization"] == {"mode": "Webhook"}


def test_cni_state_lives_under_the_workdir(tmp_path: Path) -> None:
    paths = node.NodePaths(tmp_path / "node")
    bridge = node.cni_conflist(paths)["plugins"][0]
    assert bridge["bridge"] == node.BRIDGE and bridge["ipMasq"] is False
    assert bridge["ipam"]["dataDir"].startswith(str(paths.root))


def test_node_certificates_and_apiserver_flags(tmp_path: Path) -> None:
    clients = node.node_clients("n1")
    assert clients["node"] == ("system:node:n1", "system:nodes")
    assert clients["apiserver-kubelet-client"][1] == "system:masters"
    flags = node.apiserver_args(Pki(tmp_path))
    assert any(f.startswith("--kubelet-client-certificate=") for f in flags)
    assert "--kubelet-preferred-address-types=InternalIP,Hostname" in flags
    assert node.NODE_RBAC["roleRef"]["name"] == "system:node"


def test_fake_nodes_beside_a_real_node_are_tainted() -> None:
    assert _fake_node("f").get("spec") is None
    tainted = _fake_node("f", tainted=True)
    assert tainted["spec"]["taints"] == [FAKE_NODE_TAINT]
    assert tainted["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"


def test_stop_recorded_only_stops_the_named_processes(tmp_path: Path) -> None:
    group = ProcessGroup(tmp_path)
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    group.start("a", sleep)
    group.start("b", sleep)
    assert stop_recorded(tmp_path, grace=5, only=("a",)) == ["a"]
    assert stop_recorded(tmp_path, grace=5) == ["b"]


def test_a_workdir_without_a_node_has_no_node_state(tmp_path: Path) -> None:
    assert not node.has_node(tmp_path)
    node.cleanup_host(tmp_path)  # nothing recorded: nothing touched
    assert node.mounts_under([tmp_path]) == []


def test_processes_of_a_workdir_exclude_this_process_and_its_ancestors(tmp_path: Path) -> None:
    import subprocess

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", str(tmp_path)])
    try:
        pids = [pid for pid, _ in node._processes_of(tmp_path)]
        assert child.pid in pids
        assert not node._ancestors() & set(pids)
        # only the stack's own binaries are ever killed by cleanup_host: a python is not one of them
        assert node._executable(child.pid) not in node.STACK_EXECUTABLES
    finally:
        child.kill()
        child.wait()
    assert child.pid not in [pid for pid, _ in node._processes_of(tmp_path)]
