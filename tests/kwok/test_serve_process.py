"""`jangar serve` as a real process on the kwok cluster: it migrates Postgres, wins the Lease, drives the
smoke workflow run to Succeeded, records it, exports metrics, and on SIGTERM exits cleanly and releases the
Lease at once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import asyncpg
from kubernetes_asyncio import client as k8s

from jangar.dev.cluster import LocalCluster
from jangar.dev.processes import free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "charts" / "agents" / "examples"
SMOKE = (
    "agentprovider-smoke.yaml",
    "agent-smoke.yaml",
    "implementationspec-smoke.yaml",
    "agentrun-workflow-smoke.yaml",
)


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return int(resp.status), resp.read().decode()


async def test_serve_runs_the_smoke_workflow_and_shuts_down_gracefully(
    kwok_crds: LocalCluster,
    kwok_client: k8s.ApiClient,
    kwok_namespace: str,
    kubectl_bin: Path,
    database_url: str,
    tmp_path: Path,
) -> None:
    ns = kwok_namespace
    port = free_port()
    env = {
        **os.environ,
        "JANGAR_AGENTS_CONTROLLER_NAMESPACES": ns,
        "JANGAR_POD_NAMESPACE": ns,
        "JANGAR_POD_NAME": "jangar-test-0",
        "JANGAR_HTTP_PORT": str(port),
        "DATABASE_URL": database_url.replace("postgresql+asyncpg://", "postgresql://"),
        "JANGAR_MIGRATIONS": "auto",
    }
    log = (tmp_path / "jangar.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jangar.cli", "serve", "--kubeconfig", str(kwok_crds.kubeconfig)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(600):
            assert proc.poll() is None, (tmp_path / "jangar.log").read_text()[-3000:]
            try:
                if _get(f"http://127.0.0.1:{port}/ready")[0] == 200:
                    break
            except OSError:
                pass
            await asyncio.sleep(0.1)
        for name in SMOKE:
            subprocess.run(
                [
                    str(kubectl_bin),
                    "--kubeconfig",
                    str(kwok_crds.kubeconfig),
                    "apply",
                    "-n",
                    ns,
                    "-f",
                    str(EXAMPLES / name),
                ],
                check=True,
                capture_output=True,
            )
        custom = k8s.CustomObjectsApi(kwok_client)
        phase = ""
        for _ in range(1200):
            run = await custom.get_namespaced_custom_object(
                "agents.proompteng.ai", "v1alpha1", ns, "agentruns", "agents-workflow-smoke"
            )
            phase = (run.get("status") or {}).get("phase", "")
            if phase in {"Succeeded", "Failed"}:
                break
            await asyncio.sleep(0.1)
        assert phase == "Succeeded", json.dumps(run.get("status"), indent=1)
        assert run["status"]["observedGeneration"] == run["metadata"]["generation"]

        lease = await k8s.CoordinationV1Api(kwok_client).read_namespaced_lease("jangar-controller", ns)
        assert lease.spec.holder_identity == "jangar-test-0"
        _, metrics = _get(f"http://127.0.0.1:{port}/metrics")
        assert 'leader_election_master_status{name="jangar-controller"} 1.0' in metrics
        assert "controller_runtime_reconcile_total" in metrics

        dsn = env["DATABASE_URL"]
        row = None
        for _ in range(100):
            conn = await asyncpg.connect(dsn)
            try:
                row = await conn.fetchrow(
                    "select phase, started_at, finished_at from agent_run_records where name = $1",
                    "agents-workflow-smoke",
                )
            except asyncpg.UndefinedTableError:
                row = None
            finally:
                await conn.close()
            if row is not None and row["phase"] == "Succeeded":
                break
            await asyncio.sleep(0.2)
        assert row is not None and row["phase"] == "Succeeded"
        assert row["finished_at"] is not None

        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert time.monotonic() - started < 30
        lease = await k8s.CoordinationV1Api(kwok_client).read_namespaced_lease("jangar-controller", ns)
        assert not lease.spec.holder_identity, "a graceful shutdown releases the Lease"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
