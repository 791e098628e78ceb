"""The chart's process contract, end to end against a real apiserver: `jangar serve` started with exactly the
env the chart renders and authenticated as the chart's ServiceAccount (a TokenRequest token, so only the
chart's RBAC applies) answers /health, /ready and /metrics, and takes the leader-election Lease."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client as k8s

from jangar.dev.cluster import LocalCluster
from tests.chart.envtest_support import Kube, install_crds

pytestmark = pytest.mark.envtest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _sa_kubeconfig(admin: Path, token: str, out: Path) -> Path:
    config = yaml.safe_load(admin.read_text())
    cluster = config["clusters"][0]
    out.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": "sa", "user": {"token": token}}],
                "contexts": [{"name": "sa", "context": {"cluster": cluster["name"], "user": "sa"}}],
                "current-context": "sa",
            }
        )
    )
    out.chmod(0o600)
    return out


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError:
        return 0, ""


async def _wait_status(url: str, proc: subprocess.Popen[str], timeout: float) -> tuple[int, str]:
    deadline = time.monotonic() + timeout
    last: tuple[int, str] = (0, "")
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        last = await asyncio.to_thread(_get, url)
        if last[0] == 200:
            return last
        await asyncio.sleep(0.5)
    return last


def _container_env(manifest: str, namespace: str) -> dict[str, str]:
    for doc in yaml.safe_load_all(manifest):
        if doc and doc["kind"] == "Deployment" and doc["metadata"]["name"] == "agents":
            env: dict[str, str] = {}
            item: dict[str, Any]
            for item in doc["spec"]["template"]["spec"]["containers"][0]["env"]:
                if "value" in item:
                    env[item["name"]] = item["value"]
                elif item["name"] == "JANGAR_POD_NAMESPACE":
                    env[item["name"]] = namespace
                elif item["name"] == "JANGAR_POD_NAME":
                    env[item["name"]] = "agents-contract-test"
            return env
    raise AssertionError("no Deployment agents rendered")


@pytest.mark.parametrize(
    "values",
    [None, {"rbac": {"clusterScoped": True}, "controller": {"namespaces": ["*"]}}],
    ids=["namespaced", "all-namespaces"],
)
async def test_jangar_serve_with_chart_env_and_rbac(
    values: dict[str, Any] | None,
    envtest: LocalCluster,
    kubectl_bin: Path,
    helm_bin: Path,
    kube_client: k8s.ApiClient,
    namespace: str,
    tmp_path: Path,
) -> None:
    kube = Kube(envtest.kubeconfig, kubectl_bin, helm_bin)
    install_crds(kube)
    kube.install("agents", namespace, values)
    manifest = kube.helm("get", "manifest", "agents", "--namespace", namespace).stdout
    env = _container_env(manifest, namespace)
    http_port, grpc_port = _free_port(), _free_port()
    env.update({"JANGAR_HTTP_PORT": str(http_port), "JANGAR_GRPC_PORT": str(grpc_port)})
    token = kube.kubectl(
        "create", "token", "agents-sa", "--namespace", namespace, "--duration=1h"
    ).stdout.strip()
    kubeconfig = _sa_kubeconfig(envtest.kubeconfig, token, tmp_path / "sa.kubeconfig")

    jangar = Path(sys.executable).parent / "jangar"
    log = (tmp_path / "jangar.log").open("w")
    proc = subprocess.Popen(
        [str(jangar), "serve", "--kubeconfig", str(kubeconfig)],
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{http_port}"
        status, body = await _wait_status(f"{base}/health", proc, 60)
        assert status == 200, (status, body, (tmp_path / "jangar.log").read_text()[-4000:])
        status, body = await _wait_status(f"{base}/ready", proc, 90)
        assert status == 200, (status, body, (tmp_path / "jangar.log").read_text()[-4000:])
        status, body = await _wait_status(f"{base}{env['JANGAR_PROMETHEUS_METRICS_PATH']}", proc, 10)
        assert status == 200 and "# HELP" in body
        # Leader election ran with the chart's Lease RBAC.
        lease_name = env["JANGAR_LEADER_ELECTION_LEASE_NAME"]
        coordination = k8s.CoordinationV1Api(kube_client)
        lease = None
        for _ in range(60):
            with contextlib.suppress(k8s.ApiException):
                lease = await coordination.read_namespaced_lease(lease_name, namespace)
                if lease.spec.holder_identity:
                    break
            await asyncio.sleep(0.5)
        assert lease is not None and lease.spec.holder_identity, (tmp_path / "jangar.log").read_text()[-4000:]
        output = (tmp_path / "jangar.log").read_text()
        assert "forbidden" not in output.lower(), output[-4000:]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
    assert proc.returncode == 0, (tmp_path / "jangar.log").read_text()[-4000:]
    kube.helm("uninstall", "agents", "--namespace", namespace)
