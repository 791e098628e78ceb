"""The local control plane: etcd + kube-apiserver, optionally kube-controller-manager, kube-scheduler
and kwok with fake nodes, all built from source by `scripts/k8s-assets.sh`.

The "envtest" shape (etcd + apiserver, RBAC on, ServiceAccount admission off) serves API-level tests; the
"kwok" shape adds the controllers, the scheduler and kwok so Jobs create Pods that get scheduled onto fake
nodes and complete. Both write an admin kubeconfig (mTLS, `system:masters`) and keep one log per component.
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
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from jangar.dev import pki as pki_mod
from jangar.dev.assets import Assets, find_assets, kubectl_binary
from jangar.dev.kwok_stages import write_stages
from jangar.dev.processes import ProcessGroup, free_port, stop_recorded

FAKE_NODE_CAPACITY = {"cpu": "32", "memory": "256Gi", "pods": "110"}


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
    """One local control plane rooted at `workdir`."""

    workdir: Path
    kwok: bool = False
    nodes: int = 2
    assets: Assets = field(default_factory=find_assets)
    group: ProcessGroup = field(init=False)
    apiserver_port: int = field(init=False, default=0)
    etcd_port: int = field(init=False, default=0)
    timings: dict[str, float] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.workdir = self.workdir.resolve()
        self.group = ProcessGroup(self.workdir)

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
        self.group.stop_all()
        stop_recorded(self.workdir)

    def _timed(self, name: str, started: float) -> None:
        self.timings[name] = round(time.monotonic() - started, 2)

    def _up(self, timeout: float) -> None:
        t0 = time.monotonic()
        if self.workdir.exists():
            stop_recorded(self.workdir)
            shutil.rmtree(self.workdir)
        self.workdir.mkdir(parents=True)
        pki_mod.generate(self.workdir / "pki")
        self._timed("pki", t0)

        t = time.monotonic()
        self._start_etcd(timeout)
        self._timed("etcd", t)

        t = time.monotonic()
        self.apiserver_port = free_port()
        self._write_kubeconfig()
        self._start_apiserver(timeout)
        self._timed("kube-apiserver", t)

        if self.kwok:
            t = time.monotonic()
            self._start_kwok_stack(timeout)
            self._timed("kwok-stack", t)
        self._timed("total", t0)
        (self.workdir / "cluster.json").write_text(
            json.dumps(
                {
                    "server": self.server,
                    "etcd": self.etcd_url,
                    "kubeconfig": str(self.kubeconfig),
                    "kwok": self.kwok,
                    "timings": self.timings,
                },
                indent=2,
            )
        )

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
            "--bind-address=127.0.0.1",
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
        if not self.kwok:
            # Without kube-controller-manager no `default` ServiceAccount exists; the admission plugin
            # would reject every Pod and Deployment created by tests.
            argv.append("--disable-admission-plugins=ServiceAccount")
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
        kwok = self.group.start(
            "kwok",
            [
                str(self.assets.binary("kwok")),
                f"--kubeconfig={self.kubeconfig}",
                f"--config={write_stages(self.assets.kwok_stages, self.workdir / 'kwok-stages.yaml')}",
                "--manage-all-nodes=true",
                "--node-lease-duration-seconds=40",
                f"--server-address=127.0.0.1:{free_port()}",
            ],
        )
        for proc, port in ((kcm, kcm_port), (sched, sched_port)):
            self.group.wait_until(
                proc, functools.partial(_insecure_health, port), timeout, f"{proc.name} /healthz"
            )
        for i in range(self.nodes):
            self._request("POST", "/api/v1/nodes", _fake_node(f"kwok-node-{i}"))
        self.group.wait_until(kwok, self._nodes_ready, timeout, f"{self.nodes} fake nodes Ready")
        self.group.wait_until(
            kcm,
            lambda: self._get("/api/v1/namespaces/default/serviceaccounts/default") == 200,
            timeout,
            "the default ServiceAccount (service-account controller running)",
        )

    def _nodes_ready(self) -> bool:
        _, body = self._request("GET", "/api/v1/nodes")
        ready = 0
        for node in body.get("items", []):
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

    def _request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
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


def _fake_node(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "type": "kwok"},
        },
        "status": {"allocatable": FAKE_NODE_CAPACITY, "capacity": FAKE_NODE_CAPACITY},
    }


def kubectl_env(cluster: LocalCluster) -> dict[str, str]:
    """Environment for shell use: KUBECONFIG plus the asset and kubectl directories on PATH."""
    path = os.pathsep.join(
        [str(cluster.assets.bin), str(kubectl_binary().parent), os.environ.get("PATH", "")]
    )
    return {"KUBECONFIG": str(cluster.kubeconfig), "PATH": path}
