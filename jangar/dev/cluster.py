"""The local control plane: etcd + kube-apiserver, optionally kube-controller-manager, kube-scheduler
and kwok with fake nodes, all built from source by `scripts/k8s-assets.sh`.

The "envtest" shape (etcd + apiserver, RBAC on, ServiceAccount admission off) serves API-level tests; the
"kwok" shape adds the controllers, the scheduler and kwok so Jobs create Pods that get scheduled onto fake
nodes and complete, and the local storage provisioner (`jangar.dev.provisioner`: the default StorageClass
`jangar-local`, a hostPath PersistentVolume per claim under `<workdir>/volumes`) so claims bind. The "node"
shape (`node=True`, root only) adds a real node beside them: containerd, runc, bridge CNI and a kubelet
(`jangar.dev.node`), so Pods really run; kwok then only manages the (tainted) fake nodes, if any. Every shape writes an admin kubeconfig (mTLS, `system:masters`) and keeps one log per component.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import shutil
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from jangar.dev import node as node_mod
from jangar.dev import pki as pki_mod
from jangar.dev import provisioner as provisioner_mod
from jangar.dev.assets import Assets, find_assets, kubectl_binary
from jangar.dev.kwok_stages import write_stages
from jangar.dev.processes import ProcessGroup, StartupError, free_port, pid_alive, stop_recorded

FAKE_NODE_CAPACITY = {"cpu": "32", "memory": "256Gi", "pods": "110"}
# Beside a real node, fake nodes carry this taint so only pods that tolerate it land there.
FAKE_NODE_TAINT = {"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}


def _advertise_address() -> str:
    """The apiserver refuses to start without a routable advertise address on hosts with no default
    route; ask the kernel which source address it would use (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("10.255.255.255", 1))
            addr: str = sock.getsockname()[0]
            return addr
        except OSError:
            return "127.0.0.1"


@dataclass
class LocalCluster:
    """One local control plane rooted at `workdir`.

    `kwok=True` adds kube-controller-manager, kube-scheduler and kwok with `nodes` fake nodes. `node=True`
    implies the controllers and adds a real node named `node_name` (containerd + kubelet, root only); kwok
    then runs only if `nodes > 0`, managing just the fake nodes (annotation selector), which are tainted
    (`FAKE_NODE_TAINT`). `node_images` maps an image base name to an OCI archive imported into the node's
    containerd at start (besides the pause and `local.jangar.dev/busybox:1` images built here).
    """

    workdir: Path
    kwok: bool = False
    nodes: int = 2
    node: bool = False
    node_name: str = node_mod.NODE_NAME
    node_images: dict[str, Path] = field(default_factory=dict)
    assets: Assets = field(default_factory=find_assets)
    group: ProcessGroup = field(init=False)
    apiserver_port: int = field(init=False, default=0)
    etcd_port: int = field(init=False, default=0)
    timings: dict[str, float] = field(init=False, default_factory=dict)
    real_node: node_mod.RealNode | None = field(init=False, default=None)
    apiserver_extra_args: tuple[str, ...] = ()
    """Appended to the API server's flags (later flags win), read at every start: set it, then
    `restart_apiserver()` to run with e.g. `--watch-cache=false` (scripts/fault)."""

    def __post_init__(self) -> None:
        self.workdir = self.workdir.resolve()
        self.group = ProcessGroup(self.workdir)
        if self.node:
            self.kwok = True

    @classmethod
    def attach(cls, workdir: Path) -> LocalCluster:
        """The cluster recorded in `workdir/cluster.json` (started by another process), for `down()`."""
        info = json.loads((workdir / "cluster.json").read_text())
        cluster = cls(workdir, kwok=info.get("kwok", False), node=info.get("node", False))
        cluster.node = bool(info.get("node", False))
        cluster.node_name = info.get("node_name", node_mod.NODE_NAME)
        cluster.apiserver_port = int(info["server"].rsplit(":", 1)[1])
        return cluster

    # -- paths and addresses ------------------------------------------------------------------------
    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_port}"

    @property
    def pki(self) -> pki_mod.Pki:
        return pki_mod.Pki(self.workdir / "pki")

    @property
    def log_dir(self) -> Path:
        return self.group.log_dir

    # -- lifecycle --------------------------------------------------------------------------------
    def up(self, timeout: float = 180.0) -> LocalCluster:
        """Start everything and wait until it is usable; on any failure stop what was started."""
        try:
            self._up(timeout)
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        """Stop everything. With a real node, in the order that leaves nothing on the host: pods deleted
        through the API while the kubelet runs (CNI DEL, unmounts), the kubelet stopped, containerd's tasks
        and containers removed, containerd stopped, then the control plane, then the host changes undone
        (`node.cleanup_host`). Works after a failed start and from another process (`attach`)."""
        try:
            if node_mod.has_node(self.workdir):
                self._down_node()
        finally:
            try:
                self.group.stop_all()
                stop_recorded(self.workdir)
            finally:
                if node_mod.has_node(self.workdir):
                    t = time.monotonic()
                    node_mod.cleanup_host(self.workdir)
                    self._timed("down-host-cleanup", t)
                remove_volumes(self.workdir)

    def _stop(self, name: str, grace: float = 10.0) -> None:
        self.group.stop(name, grace)
        stop_recorded(self.workdir, grace, only=(name,))

    def _recorded_alive(self, name: str) -> bool:
        if name in self.group.processes:
            popen = self.group.processes[name].popen
            return popen is not None and popen.poll() is None
        with contextlib.suppress(OSError, ValueError, KeyError):
            return pid_alive(int(json.loads((self.workdir / "processes.json").read_text())[name]))
        return False

    def _down_node(self) -> None:
        t = time.monotonic()
        self._stop("kube-controller-manager")  # no Job controller recreating the pods being deleted
        if self._recorded_alive("kubelet") and self._recorded_alive("kube-apiserver"):
            with contextlib.suppress(Exception):
                node_mod.delete_node_pods(self._request, self.node_name)
        self._timed("down-pods", t)
        self._stop("kubelet")
        self._stop("kube-proxy")
        self._stop("coredns")
        node_mod.remove_containers(self.workdir)
        self._stop("containerd")
        self._timed("down-node", t)

    def _timed(self, name: str, started: float) -> None:
        self.timings[name] = round(time.monotonic() - started, 2)

    def _up(self, timeout: float) -> None:
        t0 = time.monotonic()
        if self.workdir.exists():
            stop_cluster(self.workdir)
            left = node_mod.mounts_under([self.workdir])
            if left:  # never rmtree through a mount
                raise StartupError(f"mounts left under {self.workdir}: {', '.join(left)}")
            shutil.rmtree(self.workdir)
        self.workdir.mkdir(parents=True)
        if self.node:
            self.real_node = node_mod.RealNode(
                self.workdir, self.group, self.pki, self.assets, _advertise_address(), self.node_name
            )
            self.real_node.preflight()
            self.real_node.record_host_state()
            t = time.monotonic()
            self.real_node.start_containerd(timeout)
            self.real_node.import_base_images()
            for base_name, archive in self.node_images.items():
                self.real_node.import_image(archive, base_name)
            self._timed("containerd+images", t)
        clients = node_mod.node_clients(self.node_name) if self.node else None
        node_ips = (_advertise_address(),) if self.node else ()
        pki_mod.generate(self.workdir / "pki", clients=clients, extra_ips=node_ips)
        self._timed("pki", t0)

        t = time.monotonic()
        self._start_etcd(timeout)
        self._timed("etcd", t)

        t = time.monotonic()
        self.apiserver_port = free_port()
        self._write_kubeconfig()
        self._start_apiserver(timeout)
        self._timed("kube-apiserver", t)

        self._write_info()
        if self.kwok:
            t = time.monotonic()
            self._start_kwok_stack(timeout)
            self._timed("kwok-stack", t)
            t = time.monotonic()
            self._start_provisioner(timeout)
            self._timed("provisioner", t)
        if self.real_node is not None:
            t = time.monotonic()
            self._request(
                "POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", node_mod.NODE_RBAC
            )
            for path, body in node_mod.DNS_RBAC:
                self._request("POST", path, body)
            self.real_node.start_dns(self.server, timeout)
            self.real_node.start_kubelet(self.server)
            self.group.wait_until(
                self.group.processes["kubelet"],
                self._real_node_ready,
                timeout,
                f"node {self.node_name} Ready",
            )
            self._timed("node-ready", t)
            t = time.monotonic()
            # After the Node exists: kube-proxy reads its addresses from it.
            self.real_node.start_kube_proxy(self.server, timeout)
            self._timed("kube-proxy", t)
        self._timed("total", t0)
        self._write_info()

    def _write_info(self) -> None:
        info = {
            "server": self.server,
            "etcd": self.etcd_url,
            "kubeconfig": str(self.kubeconfig),
            "kwok": self.kwok,
            "node": self.node,
            "node_name": self.node_name,
            "timings": self.timings,
        }
        (self.workdir / "cluster.json").write_text(json.dumps(info, indent=2))

    def _real_node_ready(self) -> bool:
        status, body = self._request("GET", f"/api/v1/nodes/{self.node_name}")
        conditions = body.get("status", {}).get("conditions", []) if status == 200 else []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    def alias_image(self, ref: str, alias: str) -> None:
        """Another name for an image already on the real node."""
        if self.real_node is None:
            raise StartupError("alias_image needs a cluster started with node=True in this process")
        self.real_node.alias_image(ref, alias)

    def import_image(self, archive: Path, base_name: str) -> None:
        """Import an OCI archive into the real node's containerd as `<base_name>:<tag in the archive>`."""
        if self.real_node is None:
            raise StartupError("import_image needs a cluster started with node=True in this process")
        self.real_node.import_image(archive, base_name)

    # -- etcd ---------------------------------------------------------------------------------------
    def _start_etcd(self, timeout: float) -> None:
        self.etcd_port, peer = free_port(), free_port()
        proc = self.group.start(
            "etcd",
            [
                str(self.assets.binary("etcd")),
                "--name=default",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=default=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
                "--quota-backend-bytes=8589934592",
            ],
        )

        def healthy() -> bool:
            with urllib.request.urlopen(f"{self.etcd_url}/health", timeout=2) as resp:
                return bool(json.loads(resp.read()).get("health") == "true")

        self.group.wait_until(proc, healthy, timeout, "etcd /health")

    # -- kube-apiserver -----------------------------------------------------------------------------
    def _apiserver_argv(self) -> list[str]:
        p = self.pki
        argv = [
            str(self.assets.binary("kube-apiserver")),
            f"--etcd-servers={self.etcd_url}",
            # Pods reach the API server on the node address (the `kubernetes` Service's endpoint).
            f"--bind-address={'0.0.0.0' if self.node else '127.0.0.1'}",
            f"--secure-port={self.apiserver_port}",
            f"--advertise-address={_advertise_address()}",
            f"--tls-cert-file={p.serving_crt}",
            f"--tls-private-key-file={p.serving_key}",
            f"--client-ca-file={p.ca_crt}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={p.sa_pub}",
            f"--service-account-signing-key-file={p.sa_key}",
            "--authorization-mode=RBAC",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=true",
            f"--cert-dir={self.workdir / 'certs'}",
            "--profiling=false",
            "--watch-cache=true",
        ]
        if self.node:
            argv += node_mod.apiserver_args(p)
        if not self.kwok:
            # Without kube-controller-manager no `default` ServiceAccount exists; the admission plugin
            # would reject every Pod and Deployment created by tests.
            argv.append("--disable-admission-plugins=ServiceAccount")
        argv += self.apiserver_extra_args
        return argv

    def _start_apiserver(self, timeout: float) -> None:
        proc = self.group.start("kube-apiserver", self._apiserver_argv())
        self.group.wait_until(proc, lambda: self._get("/readyz") == 200, timeout, "kube-apiserver /readyz")

    def restart_apiserver(self, downtime: float = 0.0, timeout: float = 120.0) -> None:
        """Stop the API server (watches break), wait, start it again on the same port."""
        self.group.stop("kube-apiserver")
        time.sleep(downtime)
        self._start_apiserver(timeout)

    # -- kwok stack ---------------------------------------------------------------------------------
    def _start_kwok_stack(self, timeout: float) -> None:
        p = self.pki
        common = [
            f"--kubeconfig={self.kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
        ]
        kcm_port, sched_port = free_port(), free_port()
        kcm = self.group.start(
            "kube-controller-manager",
            [
                str(self.assets.binary("kube-controller-manager")),
                *common,
                f"--secure-port={kcm_port}",
                f"--root-ca-file={p.ca_crt}",
                f"--service-account-private-key-file={p.sa_key}",
                "--use-service-account-credentials=false",
                "--concurrent-job-syncs=10",
                "--kube-api-qps=200",
                "--kube-api-burst=400",
            ],
        )
        sched = self.group.start(
            "kube-scheduler",
            [str(self.assets.binary("kube-scheduler")), *common, f"--secure-port={sched_port}"],
        )
        for proc, port in ((kcm, kcm_port), (sched, sched_port)):
            self.group.wait_until(
                proc, functools.partial(_insecure_health, port), timeout, f"{proc.name} /healthz"
            )
        if not self.node or self.nodes > 0:
            # Beside a real node kwok must never take it over: it manages only the annotated fake nodes.
            manage = (
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake"
                if self.node
                else "--manage-all-nodes=true"
            )
            kwok = self.group.start(
                "kwok",
                [
                    str(self.assets.binary("kwok")),
                    f"--kubeconfig={self.kubeconfig}",
                    f"--config={write_stages(self.assets.kwok_stages, self.workdir / 'kwok-stages.yaml')}",
                    manage,
                    "--node-lease-duration-seconds=40",
                    f"--server-address=127.0.0.1:{free_port()}",
                ],
            )
            for i in range(self.nodes):
                self._request("POST", "/api/v1/nodes", _fake_node(f"kwok-node-{i}", tainted=self.node))
            self.group.wait_until(kwok, self._nodes_ready, timeout, f"{self.nodes} fake nodes Ready")
        self.group.wait_until(
            kcm,
            lambda: self._get("/api/v1/namespaces/default/serviceaccounts/default") == 200,
            timeout,
            "the default ServiceAccount (service-account controller running)",
        )

    # -- the local storage provisioner (jangar.dev.provisioner) ------------------------------------
    @property
    def volumes_dir(self) -> Path:
        """Where the provisioner puts one directory per PersistentVolume (`<workdir>/volumes/<claim uid>`)."""
        return self.workdir / provisioner_mod.VOLUMES_DIR

    def _start_provisioner(self, timeout: float) -> None:
        """Its own process in the group (it outlives `jangar dev cluster up`); ready once it has created the
        StorageClass `jangar-local`. It runs this interpreter on this checkout of jangar."""
        package_root = str(Path(provisioner_mod.__file__).resolve().parents[2])
        pythonpath = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
        argv = [
            sys.executable,
            "-m",
            "jangar.dev.provisioner",
            f"--kubeconfig={self.kubeconfig}",
            f"--volumes-dir={self.volumes_dir}",
        ]
        if self.node:
            argv.append(f"--node-name={self.node_name}")
        proc = self.group.start(provisioner_mod.PROCESS_NAME, argv, env={"PYTHONPATH": pythonpath})
        path = f"/apis/storage.k8s.io/v1/storageclasses/{provisioner_mod.STORAGE_CLASS}"
        self.group.wait_until(
            proc, lambda: self._get(path) == 200, timeout, f"StorageClass {provisioner_mod.STORAGE_CLASS}"
        )

    def _nodes_ready(self) -> bool:
        _, body = self._request("GET", "/api/v1/nodes")
        ready = 0
        for node in body.get("items", []):
            if node["metadata"].get("annotations", {}).get("kwok.x-k8s.io/node") != "fake":
                continue
            for cond in node.get("status", {}).get("conditions", []):
                if cond.get("type") == "Ready" and cond.get("status") == "True":
                    ready += 1
        return ready >= self.nodes

    # -- kubeconfig and raw HTTP ----------------------------------------------------------------
    def _write_kubeconfig(self) -> None:
        def b64(path: Path) -> str:
            return base64.b64encode(path.read_bytes()).decode()

        p = self.pki
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "jangar-dev",
                    "cluster": {"server": self.server, "certificate-authority-data": b64(p.ca_crt)},
                }
            ],
            "users": [
                {
                    "name": "admin",
                    "user": {
                        "client-certificate-data": b64(p.client_crt("admin")),
                        "client-key-data": b64(p.client_key("admin")),
                    },
                }
            ],
            "contexts": [{"name": "jangar-dev", "context": {"cluster": "jangar-dev", "user": "admin"}}],
            "current-context": "jangar-dev",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))
        self.kubeconfig.chmod(0o600)

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_crt))
        ctx.load_cert_chain(str(self.pki.client_crt("admin")), str(self.pki.client_key("admin")))
        return ctx

    def _request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=self._ssl_context(), timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as err:
            with contextlib.suppress(Exception):
                return err.code, json.loads(err.read())
            return err.code, {}

    def _get(self, path: str) -> int:
        req = urllib.request.Request(self.server + path)
        try:
            with urllib.request.urlopen(req, context=self._ssl_context(), timeout=5) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as err:
            return int(err.code)


def _insecure_health(port: int) -> bool:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", context=ctx, timeout=2) as resp:
        return int(resp.status) == 200


def _fake_node(name: str, tainted: bool = False) -> dict[str, Any]:
    node: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "type": "kwok"},
        },
        "status": {"allocatable": FAKE_NODE_CAPACITY, "capacity": FAKE_NODE_CAPACITY},
    }
    if tainted:
        node["spec"] = {"taints": [FAKE_NODE_TAINT]}
    return node


def remove_volumes(workdir: Path) -> None:
    """After every process stopped (and a node's mounts are gone): the storage provisioner's volume
    directories, all under `<workdir>/volumes`. Never through a mount."""
    volumes = workdir / provisioner_mod.VOLUMES_DIR
    if volumes.is_dir() and not node_mod.mounts_under([volumes]):
        shutil.rmtree(volumes, ignore_errors=True)


def stop_cluster(workdir: Path) -> list[str]:
    """Stop the cluster in `workdir` started by any process, undoing a real node's host changes too."""
    if (workdir / "cluster.json").exists() and node_mod.has_node(workdir):
        with contextlib.suppress(OSError, ValueError, KeyError):
            recorded = list(json.loads((workdir / "processes.json").read_text()))
            LocalCluster.attach(workdir).down()
            return recorded
    stopped = stop_recorded(workdir)
    if node_mod.has_node(workdir):  # failed before cluster.json was written
        node_mod.cleanup_host(workdir)
    remove_volumes(workdir)
    return stopped


def kubectl_env(cluster: LocalCluster) -> dict[str, str]:
    """Environment for shell use: KUBECONFIG plus the asset and kubectl directories on PATH."""
    path = os.pathsep.join(
        [str(cluster.assets.bin), str(kubectl_binary().parent), os.environ.get("PATH", "")]
    )
    return {"KUBECONFIG": str(cluster.kubeconfig), "PATH": path}
