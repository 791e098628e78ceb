"""The chart's process contract, end to end against a real apiserver: `jangar serve` started with exactly the
env the chart renders and authenticated as the chart's ServiceAccount (a TokenRequest token, so only the
chart's RBAC applies) answers /health, /ready and /metrics, and takes the leader-election Lease."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
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
from tests.chart.envtest_support import Kube, wait_allowed


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


def _secret_value(kube: Kube, namespace: str, ref: dict[str, str]) -> str:
    data = json.loads(kube.kubectl("get", "secret", ref["name"], "-n", namespace, "-o", "json").stdout)[
        "data"
    ]
    return base64.b64decode(data[ref["key"]]).decode()


def _container_envs(kube: Kube, manifest: str, namespace: str) -> dict[str, dict[str, str]]:
    """Deployment name -> its container's env, resolved like the kubelet would (downward API, Secrets)."""
    envs: dict[str, dict[str, str]] = {}
    for doc in yaml.safe_load_all(manifest):
        if not doc or doc["kind"] != "Deployment":
            continue
        name = doc["metadata"]["name"]
        env: dict[str, str] = {}
        item: dict[str, Any]
        for item in doc["spec"]["template"]["spec"]["containers"][0]["env"]:
            if "value" in item:
                env[item["name"]] = item["value"]
            elif item["name"] == "JANGAR_POD_NAMESPACE":
                env[item["name"]] = namespace
            elif item["name"] == "JANGAR_POD_NAME":
                env[item["name"]] = f"{name}-contract-test"
            elif "secretKeyRef" in item.get("valueFrom", {}):
                env[item["name"]] = _secret_value(kube, namespace, item["valueFrom"]["secretKeyRef"])
        envs[name] = env
    assert envs, "no Deployment rendered"
    return envs


@pytest.mark.parametrize(
    "values",
    [
        None,
        {"rbac": {"clusterScoped": True}, "controller": {"namespaces": ["*"]}},
        {"controllers": {"enabled": True}},
        "database",
    ],
    ids=["namespaced", "all-namespaces", "split-controllers", "created-database-secret"],
)
async def test_jangar_serve_with_chart_env_and_rbac(
    request: pytest.FixtureRequest,
    values: dict[str, Any] | str | None,
    envtest_crds: LocalCluster,
    kubectl_bin: Path,
    helm_bin: Path,
    kube_client: k8s.ApiClient,
    namespace: str,
    tmp_path: Path,
) -> None:
    kube = Kube(envtest_crds.kubeconfig, kubectl_bin, helm_bin)
    if values == "database":
        # A real Postgres, wired the way the README describes: database.url stored by the chart in a Secret
        # (reference gap 8.1.1: that Secret was never used).
        url = request.getfixturevalue("database_url").replace("postgresql+asyncpg://", "postgresql://")
        values = {"database": {"url": url + "?sslmode=disable", "createSecret": {"enabled": True}}}
    assert not isinstance(values, str)
    kube.install("agents", namespace, values)
    manifest = kube.helm("get", "manifest", "agents", "--namespace", namespace).stdout
    envs = _container_envs(kube, manifest, namespace)
    # RBAC reaches the authorizer through an informer; a real pod starts later than this test would.
    user = f"system:serviceaccount:{namespace}:agents-sa"
    cluster_wide = bool(values and values.get("rbac", {}).get("clusterScoped"))
    await wait_allowed(
        kube_client,
        user,
        "watch",
        "agentruns",
        group="agents.proompteng.ai",
        namespace=None if cluster_wide else namespace,
    )
    await wait_allowed(
        kube_client, user, "create", "leases", group="coordination.k8s.io", namespace=namespace
    )
    token = kube.kubectl(
        "create", "token", "agents-sa", "--namespace", namespace, "--duration=1h"
    ).stdout.strip()
    kubeconfig = _sa_kubeconfig(envtest_crds.kubeconfig, token, tmp_path / "sa.kubeconfig")
    jangar = Path(sys.executable).parent / "jangar"

    procs: dict[str, tuple[subprocess.Popen[str], int, Path]] = {}
    try:
        for name, env in envs.items():
            http_port = _free_port()
            env.update({"JANGAR_HTTP_PORT": str(http_port), "JANGAR_GRPC_PORT": str(_free_port())})
            log_path = tmp_path / f"{name}.log"
            with log_path.open("w") as log:
                proc = subprocess.Popen(
                    [str(jangar), "serve", "--kubeconfig", str(kubeconfig)],
                    env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), **env},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            procs[name] = (proc, http_port, log_path)

        for name, (proc, port, log_path) in procs.items():
            base = f"http://127.0.0.1:{port}"
            for path, timeout in (
                ("/health", 60),
                ("/ready", 90),
                (envs[name]["JANGAR_PROMETHEUS_METRICS_PATH"], 10),
            ):
                status, body = await _wait_status(f"{base}{path}", proc, timeout)
                assert status == 200, (name, path, status, body, log_path.read_text()[-4000:])
            assert "# HELP" in body

        # Leader election ran with the chart's Lease RBAC, won by the Deployment that runs the controllers.
        runs_controllers = [n for n, e in envs.items() if e.get("JANGAR_LEADER_ELECTION_ENABLED") == "true"]
        assert runs_controllers == (
            ["agents-controllers"] if values and "controllers" in values else ["agents"]
        )
        if values and "database" in values:
            # DATABASE_URL came from the chart-created Secret, and jangar migrated and reached the database.
            assert envs["agents"]["DATABASE_URL"] == values["database"]["url"]
            database: dict[str, Any] = {}
            for _ in range(60):
                _, body = await asyncio.to_thread(_get, f"http://127.0.0.1:{procs['agents'][1]}/ready")
                database = json.loads(body).get("database") or {}
                if database.get("healthy") and not database.get("lastError"):
                    break
                await asyncio.sleep(0.5)
            assert database.get("healthy") and not database.get("lastError"), database
        env = envs[runs_controllers[0]]
        coordination = k8s.CoordinationV1Api(kube_client)
        holder = None
        for _ in range(60):
            with contextlib.suppress(k8s.ApiException):
                lease = await coordination.read_namespaced_lease(
                    env["JANGAR_LEADER_ELECTION_LEASE_NAME"], namespace
                )
                holder = lease.spec.holder_identity
                if holder:
                    break
            await asyncio.sleep(0.5)
        assert holder and holder.startswith(env["JANGAR_POD_NAME"]), holder
        for name, (_, _, log_path) in procs.items():
            # RBAC denials only: envtest has no namespace controller, so namespaces of earlier tests stay
            # Terminating and refuse new objects with a 403 that has nothing to do with RBAC.
            denied = [
                line
                for line in log_path.read_text().splitlines()
                if "forbidden" in line.lower() and "being terminated" not in line
            ]
            assert denied == [], (name, denied[:5])
    finally:
        for proc, _, _ in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _, _ in procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    for name, (proc, _, log_path) in procs.items():
        assert proc.returncode == 0, (name, log_path.read_text()[-4000:])
    kube.helm("uninstall", "agents", "--namespace", namespace)
