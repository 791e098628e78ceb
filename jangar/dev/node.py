"""A real node for the local control plane: containerd + runc + bridge CNI + a kubelet, no Docker.

`LocalCluster(workdir, node=True)` uses this module (the recipe is `docs/development.md`, "The node shape").
Everything the node writes lives under `<workdir>/node`, except what the kubelet, containerd and the CNI
plugins put on the host whatever their configuration says. Those host changes are recorded before the node
starts (`node/host-state.json`) and undone by `cleanup_host`:

* hardcoded directories: `/var/lib/kubelet` (device-plugins), `/var/log/containers`, `/var/log/pods`,
  `/var/lib/cni` (libcni's result cache), `/run/containerd` (shim sockets);
* sysctls: `net.ipv4.ip_forward` (bridge plugin, isGateway) and the kubelet's kernel tunables
  (`vm.overcommit_memory`, `kernel.panic`, `kernel.panic_on_oops`, ...), restored to their recorded values;
* the bridge `nodebr0` and the pods' veths, the kubelet's `KUBE-*` iptables chains (and any `CNI-*` ones);
* cgroups `/sys/fs/cgroup/<hierarchy>/kubepods` and `.../k8s.io`;
* mounts under the workdir (kubelet root-dir bind mount, secret/projected tmpfs, shm, netns, overlay rootfs).

`host_leftovers(workdir)` lists whatever of that is still there (and stray processes); a node test asserts
it is empty after teardown. Only one node can run on a host at a time (one bridge, one set of cgroups).

This VM has no CAP_SYS_RESOURCE, so containerd runs with `restrict_oom_score_adj = true`: the kubelet asks
for oom_score_adj -998 for sandboxes, which runc cannot set here.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from jangar.dev import images
from jangar.dev.assets import Assets
from jangar.dev.pki import Pki
from jangar.dev.processes import ProcessGroup, StartupError, free_port, pid_alive

NODE_NAME = "jangar-node"
BRIDGE = "nodebr0"
POD_SUBNET = "10.88.0.0/16"
POD_GATEWAY = "10.88.0.1"
STATE_FILE = "host-state.json"
NODE_PACKAGES = "containerd runc containernetworking-plugins iptables umoci busybox-static"
HOST_BINARIES = ("containerd", "ctr", "runc", "containerd-shim-runc-v2", "umoci", "busybox", "iptables")
CNI_BIN_DIRS = (Path("/usr/lib/cni"), Path("/opt/cni/bin"))
# (path, what creates it): created on the host whatever the configuration says; removed if new, unless
# another containerd or kubelet (not this node's) runs on the host and may use it too.
HOST_DIRS: tuple[tuple[Path, str], ...] = (
    (Path("/var/lib/kubelet"), "kubelet DevicePluginPath constant"),
    (Path("/var/log/containers"), "kubelet container log symlinks"),
    (Path("/var/log/pods"), "kubelet default pod log dir"),
    (Path("/var/lib/cni"), "libcni result cache (containerd 1.6 CRI)"),
    (Path("/run/containerd"), "containerd 1.6 shim sockets (/run/containerd/s)"),
)
# Set by the kubelet (protectKernelDefaults false) and by the bridge plugin (ip_forward).
SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.route_localnet",  # kube-proxy, for NodePorts on localhost
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
)
CGROUP_ROOT = Path("/sys/fs/cgroup")
# kubepods: the kubelet's (one kubelet per host). k8s.io: containerd's namespace cgroup, shared by every
# containerd on the host (another one's `ctr run` containers live there), so only removed when empty.
CGROUP_NAMES = ("kubepods", "k8s.io")
POD_CGROUP = "kubepods"
CHAIN_PREFIXES = ("KUBE-", "CNI-")
IPTABLES_TABLES = ("filter", "nat", "mangle")
MNT_DETACH = 2

Request = Callable[..., tuple[int, Any]]


class NodeUnavailableError(RuntimeError):
    """The host cannot run a real node (not root, a package missing, or another node already running)."""


def missing_host_binaries() -> list[str]:
    """Host tools the node needs (Debian packages, see NODE_PACKAGES) that are not installed."""
    absent = [b for b in HOST_BINARIES if not _which(b)]
    if not any(d.joinpath("bridge").is_file() for d in CNI_BIN_DIRS):
        absent.append("CNI plugins (containernetworking-plugins)")
    return absent


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")


def node_clients(name: str) -> dict[str, tuple[str, str | None]]:
    """The extra client certificates of the node shape, for `pki.generate(clients=...)`.

    kube-proxy's user is `system:kube-proxy`, which the built-in `system:node-proxier` binding names.
    """
    return {
        "node": (f"system:node:{name}", "system:nodes"),
        "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", "system:masters"),
        "kube-proxy": ("system:kube-proxy", None),
        "coredns": (DNS_USER, None),
    }


def apiserver_args(pki: Pki) -> list[str]:
    """kube-apiserver flags for talking to the kubelet (logs, exec, port-forward): mTLS as system:masters."""
    return [
        f"--kubelet-client-certificate={pki.client_crt('apiserver-kubelet-client')}",
        f"--kubelet-client-key={pki.client_key('apiserver-kubelet-client')}",
        # The node proxy refuses loopback targets; InternalIP is the host's address.
        "--kubelet-preferred-address-types=InternalIP,Hostname",
    ]


NODE_RBAC = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRoleBinding",
    "metadata": {"name": "jangar-dev:system:nodes"},
    # --authorization-mode=RBAC only (no Node authorizer): bind the built-in role to the nodes group.
    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:node"},
    "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:nodes"}],
}


DNS_USER = "jangar-dev:coredns"
# What CoreDNS's kubernetes plugin reads (as the stock coredns ClusterRole grants).
DNS_RBAC: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": DNS_USER},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
            ],
        },
    ),
    (
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": DNS_USER},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": DNS_USER},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": DNS_USER}],
        },
    ),
)
CLUSTER_DOMAIN = "cluster.local"


# --- the node's files ------------------------------------------------------------------------------
@dataclass(frozen=True)
class NodePaths:
    root: Path  # <cluster workdir>/node

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def socket(self) -> Path:
        return self.run / "containerd.sock"

    @property
    def containerd_config(self) -> Path:
        return self.root / "containerd" / "config.toml"

    @property
    def kubelet_config(self) -> Path:
        return self.root / "kubelet" / "config.yaml"

    @property
    def kubelet_kubeconfig(self) -> Path:
        return self.root / "kubelet" / "kubeconfig"

    @property
    def kubelet_root(self) -> Path:
        return self.root / "kubelet" / "root"

    @property
    def pod_logs(self) -> Path:
        return self.root / "pod-logs"

    @property
    def registry_hosts(self) -> Path:
        return self.root / "containerd" / "certs.d"

    @property
    def kube_proxy_config(self) -> Path:
        return self.root / "kube-proxy.yaml"

    @property
    def corefile(self) -> Path:
        return self.root / "Corefile"

    @property
    def cni_conf(self) -> Path:
        return self.root / "cni" / "conf"

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def state(self) -> Path:
        return self.root / STATE_FILE


def containerd_config(paths: NodePaths, cni_bin: Path) -> str:
    root = paths.root
    return f"""version = 2
root = "{root}/containerd/root"
state = "{root}/containerd/state"
# the `opt` plugin would otherwise create /opt/containerd
[plugins."io.containerd.internal.v1.opt"]
  path = "{root}/containerd/opt"

[grpc]
  address = "{paths.socket}"
[ttrpc]
  address = "{paths.socket}.ttrpc"
[debug]
  address = "{paths.run}/containerd-debug.sock"
  level = "info"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{images.PAUSE_IMAGE}"
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  # no CAP_SYS_RESOURCE here: oom_score_adj cannot go below 0, and the kubelet asks -998 for a sandbox
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "{_which("runc") or "runc"}"
        Root = "{paths.run}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin}"
    conf_dir = "{paths.cni_conf}"
  # per-registry hosts.toml, read at every pull (`RealNode.trust_plain_http_registry` adds one)
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{paths.registry_hosts}"
"""


def cni_conflist(paths: NodePaths) -> dict[str, Any]:
    return {
        "cniVersion": "1.0.0",
        "name": "node-pods",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(paths.root / "cni" / "net-state"),
                    "ranges": [[{"subnet": POD_SUBNET, "gateway": POD_GATEWAY}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(paths: NodePaths, pki: Pki, node_ip: str, port: int, healthz_port: int) -> dict[str, Any]:
    socket = f"unix://{paths.socket}"
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": node_ip,
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki.ca_crt)},
        },
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": socket,
        "imageServiceEndpoint": socket,
        # containerd 1.6 lacks the RuntimeConfig RPC: the kubelet falls back to this (removed in 1.38).
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "failSwapOn": False,
        "cgroupsPerQOS": True,
        "enforceNodeAllocatable": ["pods"],
        # the field is podLogsDir (an unknown field is only a warning)
        "podLogsDir": str(paths.pod_logs),
        "resolvConf": "/etc/resolv.conf",
        "clusterDomain": CLUSTER_DOMAIN,
        "clusterDNS": [node_ip],
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "registerNode": True,
        "maxPods": 30,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        # imported images cannot be pulled again: never garbage-collect them
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        # An image the kubelet once pulled (the publish test pulls jangar's from a registry) gets a pull
        # record keyed by its image ID; the default policy then makes every other name of the same image
        # (the ctr-imported `local.jangar.dev/...`) "must pull", which `imagePullPolicy: Never` refuses with
        # ErrImageNeverPull. A local node has no per-image credentials to verify.
        "imagePullCredentialsVerificationPolicy": "NeverVerify",
        "syncFrequency": "10s",
        "fileCheckFrequency": "10s",
        "nodeStatusUpdateFrequency": "10s",
    }


def kube_proxy_config(kubeconfig: Path, node: str, healthz: int, metrics: int) -> dict[str, Any]:
    """iptables mode for the pod subnet; conntrack sysctls left as the host has them (0 = do not set)."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": node,
        "clusterCIDR": POD_SUBNET,
        "mode": "iptables",
        "healthzBindAddress": f"127.0.0.1:{healthz}",
        "metricsBindAddress": f"127.0.0.1:{metrics}",
        "nodePortAddresses": ["primary"],
        "conntrack": {"maxPerCore": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
    }


def corefile(node_ip: str, kubeconfig: Path, health: int, ready: int) -> str:
    """Cluster DNS on the node address (the kubelet's clusterDNS): Services and Pods by name, the rest
    forwarded to the host's resolver."""
    return f"""\
.:53 {{
    bind {node_ip}
    errors
    health 127.0.0.1:{health}
    ready 127.0.0.1:{ready}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig} local
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    forward . /etc/resolv.conf
    cache 30
    loop
}}
"""


def _http_ok(url: str) -> bool:
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as resp:
        return bool(resp.status == 200)
    return False


def _kubeconfig(server: str, pki: Pki, user: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "local", "cluster": {"server": server, "certificate-authority": str(pki.ca_crt)}}
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate": str(pki.client_crt(user)),
                    "client-key": str(pki.client_key(user)),
                },
            }
        ],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": user}}],
        "current-context": "local",
    }


# --- start -----------------------------------------------------------------------------------------
@dataclass
class RealNode:
    """containerd + kubelet for one cluster workdir; the cluster owns the API side (RBAC, Ready, pods)."""

    workdir: Path
    group: ProcessGroup
    pki: Pki
    assets: Assets
    node_ip: str
    name: str = NODE_NAME
    kubelet_port: int = field(init=False, default=0)

    @property
    def paths(self) -> NodePaths:
        return NodePaths(self.workdir / "node")

    def ctr(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """`ctr --address <socket> -n k8s.io ARGS` (the CRI namespace)."""
        return subprocess.run(
            [_which("ctr") or "ctr", "--address", str(self.paths.socket), "-n", "k8s.io", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def preflight(self) -> None:
        if os.geteuid() != 0:
            raise NodeUnavailableError("the node shape needs root (containerd, runc, mounts, cgroups)")
        absent = missing_host_binaries()
        if absent:
            raise NodeUnavailableError(
                f"node host packages missing: {', '.join(absent)}; apt-get install {NODE_PACKAGES}"
            )
        self.assets.binary("kubelet")
        if Path("/sys/class/net", BRIDGE).exists():
            raise NodeUnavailableError(
                f"bridge {BRIDGE} exists: another node cluster runs on this host (stop it first, "
                "`jangar dev cluster down --workdir ...`), or a crashed one left it (`ip link del nodebr0`)"
            )
        if len(str(self.paths.socket)) + len(".ttrpc") > 100:
            raise NodeUnavailableError(f"workdir path too long for a unix socket: {self.paths.socket}")

    def record_host_state(self) -> None:
        """Before the first host change: what exists already and the sysctls to restore."""
        self.paths.root.mkdir(parents=True, exist_ok=True)
        state = {
            "node": self.name,
            "sysctls": {name: _sysctl(name) for name in SYSCTLS},
            "preexisting_dirs": [str(p) for p, _ in HOST_DIRS if p.exists()],
        }
        self.paths.state.write_text(json.dumps(state, indent=2))

    def start_containerd(self, timeout: float) -> None:
        p = self.paths
        for sub in (p.run, p.containerd_config.parent, p.cni_conf, p.pod_logs, p.kubelet_root, p.images):
            sub.mkdir(parents=True, exist_ok=True)
        cni_bin = next(d for d in CNI_BIN_DIRS if d.joinpath("bridge").is_file())
        p.containerd_config.write_text(containerd_config(p, cni_bin))
        (p.cni_conf / "10-node-pods.conflist").write_text(json.dumps(cni_conflist(p), indent=2))
        proc = self.group.start(
            "containerd", [_which("containerd") or "containerd", "--config", str(p.containerd_config)]
        )
        self.group.wait_until(
            proc, lambda: p.socket.exists() and self.ctr("version").returncode == 0, timeout, "its socket"
        )

    def import_image(self, archive: Path, base_name: str, pin: bool = False) -> None:
        """`ctr images import --base-name` an OCI layout tar (the tag comes from the archive)."""
        result = self.ctr("images", "import", "--base-name", base_name, str(archive), timeout=300)
        if result.returncode != 0:
            raise StartupError(f"ctr images import {archive} failed: {result.stderr.strip()}")
        if pin:
            for line in result.stdout.splitlines():
                ref = line.split()[1] if line.startswith("unpacking ") else ""
                if ref:
                    self.ctr("images", "label", ref, "io.cri-containerd.pinned=pinned")

    def trust_plain_http_registry(self, host: str) -> None:
        """Let the node pull from a local registry over plain HTTP (`host` is `address:port`)."""
        directory = self.paths.registry_hosts / host
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "hosts.toml").write_text(
            f'server = "http://{host}"\n\n[host."http://{host}"]\n  capabilities = ["pull", "resolve"]\n'
        )

    def alias_image(self, ref: str, alias: str) -> None:
        """Give an imported image another name (`ctr images tag --force`)."""
        tagged = self.ctr("images", "tag", "--force", ref, alias)
        if tagged.returncode != 0:
            raise StartupError(f"ctr images tag {ref} {alias} failed: {tagged.stderr.strip()}")

    def import_base_images(self) -> None:
        """The pause image (pinned: image GC must never remove it) and the busybox test image."""
        p = self.paths.images
        pause = images.pause_image(p / "pause-oci.tar", self.assets.bin / "pause")
        self.import_image(pause, images.PAUSE_IMAGE.rsplit(":", 1)[0], pin=True)
        self.ctr("images", "label", images.PAUSE_IMAGE, "io.cri-containerd.pinned=pinned")
        busybox = images.busybox_image(p / "busybox-oci.tar")
        self.import_image(busybox, images.BUSYBOX_IMAGE.rsplit(":", 1)[0])
        for alias in images.SAMPLE_BUSYBOX_ALIASES:
            self.alias_image(images.BUSYBOX_IMAGE, alias)

    def start_dns(self, server: str, timeout: float) -> None:
        """CoreDNS on the node address; Ready once its kubernetes plugin has synced."""
        p = self.paths
        kubeconfig = p.root / "coredns.kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(_kubeconfig(server, self.pki, "coredns"), sort_keys=False))
        health, ready = free_port(), free_port()
        p.corefile.write_text(corefile(self.node_ip, kubeconfig, health, ready))
        proc = self.group.start("coredns", [str(self.assets.binary("coredns")), "-conf", str(p.corefile)])
        self.group.wait_until(
            proc, lambda: _http_ok(f"http://127.0.0.1:{ready}/ready"), timeout, "cluster DNS ready"
        )

    def start_kube_proxy(self, server: str, timeout: float) -> None:
        """kube-proxy (iptables): Service ClusterIPs, the `kubernetes` one included, work from pods."""
        p = self.paths
        kubeconfig = p.root / "kube-proxy.kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(_kubeconfig(server, self.pki, "kube-proxy"), sort_keys=False))
        healthz, metrics = free_port(), free_port()
        p.kube_proxy_config.write_text(
            yaml.safe_dump(kube_proxy_config(kubeconfig, self.name, healthz, metrics), sort_keys=False)
        )
        proc = self.group.start(
            "kube-proxy",
            [str(self.assets.binary("kube-proxy")), f"--config={p.kube_proxy_config}", "--v=2"],
        )
        # /healthz answers 503 until the first sync of the rules; 200 once Services are programmed.
        self.group.wait_until(
            proc, lambda: _http_ok(f"http://127.0.0.1:{healthz}/healthz"), timeout, "kube-proxy synced"
        )

    def start_kubelet(self, server: str) -> None:
        p = self.paths
        self.kubelet_port = free_port()
        healthz = free_port()
        p.kubelet_config.write_text(
            yaml.safe_dump(
                kubelet_config(p, self.pki, self.node_ip, self.kubelet_port, healthz), sort_keys=False
            )
        )
        p.kubelet_kubeconfig.write_text(
            yaml.safe_dump(_kubeconfig(server, self.pki, "node"), sort_keys=False)
        )
        self.group.start(
            "kubelet",
            [
                str(self.assets.binary("kubelet")),
                f"--config={p.kubelet_config}",
                f"--kubeconfig={p.kubelet_kubeconfig}",
                f"--root-dir={p.kubelet_root}",
                f"--cert-dir={p.root / 'kubelet' / 'certs'}",
                f"--hostname-override={self.name}",
                f"--node-ip={self.node_ip}",
                "--v=2",
            ],
        )


# --- teardown --------------------------------------------------------------------------------------
def has_node(workdir: Path) -> bool:
    return NodePaths(workdir / "node").state.exists()


def delete_node_pods(request: Request, node: str, timeout: float = 60.0) -> list[str]:
    """Delete every pod bound to the node through the API (the kubelet kills it, runs CNI DEL, unmounts
    its volumes) and wait until the kubelet has confirmed each deletion. Returns the pods still there."""
    selector = f"fieldSelector=spec.nodeName%3D{node}"
    _, body = request("GET", f"/api/v1/pods?{selector}")
    for pod in body.get("items", []):
        meta = pod["metadata"]
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
        if meta.get("finalizers"):
            # e.g. the Job controller's job-tracking finalizer: that controller is stopped by now
            request("PATCH", path, {"metadata": {"finalizers": None}}, "application/merge-patch+json")
        request(
            "DELETE",
            path,
            {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 1},
        )
    deadline = time.monotonic() + timeout
    left: list[str] = []
    while time.monotonic() < deadline:
        _, body = request("GET", f"/api/v1/pods?{selector}")
        left = [f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in body.get("items", [])]
        if not left:
            return []
        time.sleep(0.3)
    return left


def remove_containers(workdir: Path) -> None:
    """Kill and delete every containerd task and container of the node (containerd must be running)."""
    paths = NodePaths(workdir / "node")
    if not paths.socket.exists():
        return
    base = [_which("ctr") or "ctr", "--address", str(paths.socket), "-n", "k8s.io"]

    def ctr(*args: str) -> str:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            return subprocess.run(
                [*base, *args], check=False, capture_output=True, text=True, timeout=30
            ).stdout
        return ""

    for task in ctr("tasks", "ls", "-q").split():
        ctr("tasks", "kill", "-s", "SIGKILL", task)
    for task in ctr("tasks", "ls", "-q").split():
        ctr("tasks", "delete", "--force", task)
    for container in ctr("containers", "ls", "-q").split():
        ctr("containers", "delete", container)


# What cleanup_host may kill when its command line names the workdir: the stack's own binaries only.
STACK_EXECUTABLES = frozenset(
    {
        "containerd",
        "containerd-shim-runc-v2",
        "runc",
        "ctr",
        "kubelet",
        "kube-proxy",
        "coredns",
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
    }
)


def _ancestors() -> set[int]:
    """This process and its ancestors (a `timeout ... --workdir X` wrapper names the workdir too)."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def _executable(pid: int) -> str:
    with contextlib.suppress(OSError):
        return os.path.basename(os.readlink(f"/proc/{pid}/exe")).removesuffix(" (deleted)")
    return ""


def _processes_of(workdir: Path) -> list[tuple[int, str]]:
    """Processes whose command line names the workdir (containerd, kubelet, shims: `-address <socket>`),
    except this process and its ancestors."""
    marker = str(workdir.resolve())
    found = []
    skip = _ancestors()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in skip or not pid_alive(int(entry.name)):
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            if marker in argv:
                found.append((int(entry.name), argv))
    return found


RUNTIME_COMMANDS = ("containerd", "containerd-shim-runc-v2", "kubelet")


def foreign_runtimes(workdir: Path) -> list[int]:
    """containerd / shim / kubelet processes that are not this node's (their command line does not name
    the workdir): the host dirs they share with the node are left alone."""
    ours = {pid for pid, _ in _processes_of(workdir)}
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) not in ours and pid_alive(int(entry.name)):
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() in RUNTIME_COMMANDS:
                    found.append(int(entry.name))
    return found


def _cgroup_dirs(names: tuple[str, ...] = CGROUP_NAMES) -> list[Path]:
    """Every `kubepods` / `k8s.io` cgroup root in every hierarchy."""
    if not CGROUP_ROOT.is_dir():
        return []
    roots = [CGROUP_ROOT, *(d for d in CGROUP_ROOT.iterdir() if d.is_dir() and not d.is_symlink())]
    return [r / name for r in roots for name in names if (r / name).is_dir()]


def _our_cgroup_dirs() -> list[Path]:
    """The kubepods cgroups, and the k8s.io ones without a process (a busy one is another containerd's)."""
    return [d for d in _cgroup_dirs() if d.name == POD_CGROUP or not _cgroup_pids(d)]


def _cgroup_pids(top: Path) -> set[int]:
    pids: set[int] = set()
    for dirpath, _, _ in os.walk(top):
        with contextlib.suppress(OSError):
            pids.update(int(x) for x in Path(dirpath, "cgroup.procs").read_text().split())
    return pids


def mounts_under(prefixes: Iterable[Path]) -> list[str]:
    marks = [str(p.resolve()) if p.exists() else str(p) for p in prefixes]
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].encode().decode("unicode_escape")
            if any(point == m or point.startswith(m.rstrip("/") + "/") for m in marks):
                found.append(point)
    return found


def _umount(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(path.encode(), 0) != 0:
        err = ctypes.get_errno()
        if err in (errno.EBUSY,):
            libc.umount2(path.encode(), MNT_DETACH)


def _iptables_chains() -> list[tuple[str, str, str]]:
    """(iptables binary, table, chain) for every KUBE-* / CNI-* chain, IPv4 and IPv6."""
    found = []
    for binary in ("iptables", "ip6tables"):
        save = _which(f"{binary}-save")
        if not save:
            continue
        for table in IPTABLES_TABLES:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                out = subprocess.run(
                    [save, "-t", table], check=False, capture_output=True, text=True, timeout=20
                ).stdout
                for line in out.splitlines():
                    if line.startswith(":") and line[1:].startswith(CHAIN_PREFIXES):
                        found.append((binary, table, line[1:].split()[0]))
    return found


def _remove_iptables_chains() -> None:
    chains = _iptables_chains()
    by_table: dict[tuple[str, str], set[str]] = {}
    for binary, table, chain in chains:
        by_table.setdefault((binary, table), set()).add(chain)
    for (binary, table), ours in by_table.items():
        tool, save = _which(binary), _which(f"{binary}-save")
        if not tool or not save:
            continue
        out = subprocess.run(
            [save, "-t", table], check=False, capture_output=True, text=True, timeout=20
        ).stdout
        for line in out.splitlines():
            if not line.startswith("-A "):
                continue
            args = shlex.split(line)
            chain = args[1]
            target = next((args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-j", "-g")), "")
            if chain not in ours and target in ours:  # a jump into one of ours from a host chain
                subprocess.run([tool, "-w", "-t", table, "-D", *args[1:]], capture_output=True, check=False)
        for chain in ours:
            subprocess.run([tool, "-w", "-t", table, "-F", chain], capture_output=True, check=False)
        for chain in ours:
            subprocess.run([tool, "-w", "-t", table, "-X", chain], capture_output=True, check=False)


def _sysctl(name: str) -> str:
    return Path("/proc/sys", *name.split(".")).read_text().strip()


def _bridge_ports() -> list[str]:
    brif = Path("/sys/class/net", BRIDGE, "brif")
    return sorted(p.name for p in brif.iterdir()) if brif.is_dir() else []


def cleanup_host(workdir: Path) -> None:
    """Undo every host change of the node recorded in `workdir` (processes must be stopped already; stray
    ones naming the workdir, and container processes left in the pod cgroups, are killed)."""
    paths = NodePaths(workdir / "node")
    if not paths.state.exists():
        return
    state = json.loads(paths.state.read_text())
    for pid, _ in _processes_of(workdir):
        if _executable(pid) in STACK_EXECUTABLES:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    pods = _cgroup_dirs((POD_CGROUP,))
    for top in pods:
        for pid in _cgroup_pids(top):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (
        any(pid_alive(p) and _executable(p) in STACK_EXECUTABLES for p, _ in _processes_of(workdir))
        or any(_cgroup_pids(t) for t in pods)
    ):
        time.sleep(0.1)
    # Mounts, deepest first (and the last of stacked mounts on one point first).
    for _ in range(5):
        mounts = mounts_under([workdir])
        if not mounts:
            break
        for point in sorted(reversed(mounts), key=lambda m: m.count("/"), reverse=True):
            _umount(point)
    for top in _our_cgroup_dirs():
        for dirpath, _, _ in os.walk(top, topdown=False):
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)
    for port in _bridge_ports():
        subprocess.run(["ip", "link", "del", port], capture_output=True, check=False)
    if Path("/sys/class/net", BRIDGE).exists():
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, check=False)
    _remove_iptables_chains()
    for name, value in state.get("sysctls", {}).items():
        with contextlib.suppress(OSError):
            if _sysctl(name) != value:
                Path("/proc/sys", *name.split(".")).write_text(value)
    preexisting = set(state.get("preexisting_dirs", []))
    shared = bool(foreign_runtimes(workdir))
    for path, _ in HOST_DIRS:
        if str(path) not in preexisting and path.exists() and not shared:
            for point in sorted(mounts_under([path]), key=lambda m: m.count("/"), reverse=True):
                _umount(point)
            shutil.rmtree(path, ignore_errors=True)
    paths.state.rename(paths.root / "host-state.restored.json")


def host_leftovers(workdir: Path) -> list[str]:
    """Everything a node in `workdir` could have left on the host: processes naming the workdir, processes
    in pod cgroups, mounts under the workdir, the bridge and veths, KUBE-/CNI- iptables chains, the pod
    cgroups, host dirs that did not exist before, sysctls not restored. Empty means clean."""
    found = [f"process {pid}: {argv[:160]}" for pid, argv in _processes_of(workdir)]
    for top in _our_cgroup_dirs():
        found += [f"process {pid} in cgroup {top}" for pid in sorted(_cgroup_pids(top))]
        found.append(f"cgroup {top}")
    found += [f"mount {m}" for m in mounts_under([workdir])]
    if Path("/sys/class/net", BRIDGE).exists():
        found.append(f"bridge {BRIDGE} (ports: {', '.join(_bridge_ports()) or 'none'})")
    found += [f"{binary} -t {table} chain {chain}" for binary, table, chain in _iptables_chains()]
    state_file = next(
        (
            f
            for f in (NodePaths(workdir / "node").state, workdir / "node" / "host-state.restored.json")
            if f.exists()
        ),
        None,
    )
    state = json.loads(state_file.read_text()) if state_file else {}
    preexisting = set(state.get("preexisting_dirs", []))
    if not foreign_runtimes(workdir):
        found += [f"host dir {p} ({why})" for p, why in HOST_DIRS if p.exists() and str(p) not in preexisting]
    for name, value in state.get("sysctls", {}).items():
        with contextlib.suppress(OSError):
            if _sysctl(name) != value:
                found.append(f"sysctl {name}={_sysctl(name)} (was {value})")
    return found
