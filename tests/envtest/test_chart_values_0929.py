"""issue 13 item 2 against a real kube-apiserver: the 0.9.29-style values file renders manifests the server
accepts (strict field validation), `helm install` turns rolloutChecksums into the sha256 of the Secret
and ConfigMap it finds with lookup, and `jangar serve` runs with the env both Deployments get."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client as k8s

from jangar.dev.cluster import LocalCluster
from tests.chart.envtest_support import Kube

V0929 = str(Path(__file__).resolve().parents[1] / "chart" / "values" / "values-0.9.29.yaml")


@pytest.fixture(scope="module")
def kube(envtest_crds: LocalCluster, kubectl_bin: Path, helm_bin: Path) -> Kube:
    return Kube(envtest_crds.kubeconfig, kubectl_bin, helm_bin)


def _here(namespace: str) -> dict[str, Any]:
    """The file names the namespace "agents"; the test's own namespace replaces it."""
    native = {"rerunOrchestrationNamespace": namespace, "systemImprovementOrchestrationNamespace": namespace}
    return {
        "controller": {"leaderElection": {"leaseNamespace": namespace}},
        "agentRuntime": {"native": native},
    }


async def test_0929_manifests_pass_server_dry_run(kube: Kube, namespace: str) -> None:
    manifest = kube.template("agents", namespace, _here(namespace), (V0929,))
    kinds = {line.split(":", 1)[1].strip() for line in manifest.splitlines() if line.startswith("kind:")}
    assert {"HorizontalPodAutoscaler", "PodDisruptionBudget", "Service", "Deployment"} <= kinds
    proc = kube.kubectl(
        "apply", "--dry-run=server", "--validate=strict", "-f", "-", stdin=manifest, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "agents-controllers-grpc created (server dry run)" in proc.stdout


async def test_rollout_checksums_hash_what_lookup_finds(
    kube: Kube, kube_client: k8s.ApiClient, namespace: str
) -> None:
    core = k8s.CoreV1Api(kube_client)
    data = {"TOKEN": "czNjcjN0"}
    await core.create_namespaced_secret(
        namespace, k8s.V1Secret(metadata=k8s.V1ObjectMeta(name="agents-env"), data=data)
    )
    kube.install("agents", namespace, _here(namespace), (V0929,))
    try:
        apps = k8s.AppsV1Api(kube_client)
        for name in ("agents", "agents-controllers"):
            dep = await apps.read_namespaced_deployment(name, namespace)
            annotations = dep.spec.template.metadata.annotations
            # Go's json.Marshal of the map: sorted keys, no spaces
            expected = hashlib.sha256(
                json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
            ).hexdigest()
            assert annotations["checksum/secret-agents-env"] == expected
            assert annotations["checksum/secret-agents-db"] == ""  # not there: empty, the render goes on
            assert annotations["checksum/configmap-agents-config"] == ""
    finally:
        kube.helm("uninstall", "agents", "--namespace", namespace, "--wait")


async def test_jangar_serve_runs_with_the_0929_env(
    kube: Kube, kube_client: k8s.ApiClient, envtest_crds: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    """Both Deployments' env of the 0.9.29 file, resolved like the kubelet, start `jangar serve` with the
    chart's ServiceAccount: /health and /ready answer, the controllers take the 0.9.29 Lease, and the API
    answers a listed origin's preflight."""
    import asyncio
    import os
    import signal
    import subprocess
    import sys

    from tests.chart.envtest_support import wait_allowed
    from tests.envtest.test_chart_process_contract import (
        _container_envs,
        _free_port,
        _sa_kubeconfig,
        _wait_status,
    )
    from tests.support.waiting import eventually

    core = k8s.CoreV1Api(kube_client)
    headers = {"headers.json": "eyJYLVRlYW0iOiAiYSJ9"}  # {"X-Team": "a"}
    await core.create_namespaced_secret(
        namespace, k8s.V1Secret(metadata=k8s.V1ObjectMeta(name="audit-headers"), data=headers)
    )
    values = {**_here(namespace), "database": {"secretRef": {"name": ""}}}  # no Postgres here
    kube.install("agents", namespace, values, (V0929,))
    procs: dict[str, tuple[subprocess.Popen[str], int, Path]] = {}
    try:
        manifest = kube.helm("get", "manifest", "agents", "--namespace", namespace).stdout
        envs = _container_envs(kube, manifest, namespace)
        assert set(envs) == {"agents", "agents-controllers"}
        user = f"system:serviceaccount:{namespace}:agents-sa"
        await wait_allowed(
            kube_client, user, "create", "leases", group="coordination.k8s.io", namespace=namespace
        )
        token = kube.kubectl("create", "token", "agents-sa", "--namespace", namespace, "--duration=1h").stdout
        kubeconfig = _sa_kubeconfig(envtest_crds.kubeconfig, token.strip(), tmp_path / "sa.kubeconfig")
        jangar = Path(sys.executable).parent / "jangar"
        python_path = {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}
        for name, env in envs.items():
            port = _free_port()
            env.update({"JANGAR_HTTP_PORT": str(port), "JANGAR_GRPC_PORT": str(_free_port())})
            log_path = tmp_path / f"{name}.log"
            with log_path.open("w") as log:
                procs[name] = (
                    subprocess.Popen(
                        [str(jangar), "serve", "--kubeconfig", str(kubeconfig)],
                        # PYTHONPATH too: in a worktree, the venv's console script would import main's jangar
                        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), **python_path, **env},
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        text=True,
                    ),
                    port,
                    log_path,
                )
        for name, (proc, port, log_path) in procs.items():
            for path, timeout in (("/health", 60), ("/ready", 90)):
                status, body = await _wait_status(f"http://127.0.0.1:{port}{path}", proc, timeout)
                assert status == 200, (name, path, status, body, log_path.read_text()[-4000:])
        coordination = k8s.CoordinationV1Api(kube_client)

        async def holder() -> str:
            try:
                lease = await coordination.read_namespaced_lease("agents-controller-leader", namespace)
            except k8s.ApiException:
                return ""
            return str(lease.spec.holder_identity or "")

        held = await eventually(
            holder, 60, interval=0.5, what="the controllers hold agents-controller-leader"
        )
        assert held.startswith(envs["agents-controllers"]["JANGAR_POD_NAME"])
        assert envs["agents-controllers"]["JANGAR_LEADER_ELECTION_LEASE_DURATION_SECONDS"] == "30"

        def preflight() -> int:
            import urllib.request

            request = urllib.request.Request(
                f"http://127.0.0.1:{procs['agents'][1]}/v1/agent-runs",
                method="OPTIONS",
                headers={"Origin": "https://ui.example.com", "Access-Control-Request-Method": "POST"},
            )
            with urllib.request.urlopen(request, timeout=5) as resp:
                assert resp.headers["Access-Control-Allow-Origin"] == "https://ui.example.com"
                return int(resp.status)

        assert await asyncio.to_thread(preflight) == 204
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
        kube.helm("uninstall", "agents", "--namespace", namespace, "--wait")
    for name, (proc, _, log_path) in procs.items():
        assert proc.returncode == 0, (name, log_path.read_text()[-4000:])
