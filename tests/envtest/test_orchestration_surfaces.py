"""The orchestration surfaces against a real API server with the controllers running: `/v1/orchestration-runs`
(idempotent submit, 404/400/429, list, approve/reject with the first decision winning, cancel), agentctl as a
process (orchestration run/get/wait, reject, bad input), and the Postgres records of OrchestrationRuns and
ToolRuns written by the controllers through the real recorder."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg  # type: ignore[import-untyped]
import pytest_asyncio

from jangar.api.refs import APPROVALPOLICIES, BUDGETS, ORCHESTRATIONRUNS, ORCHESTRATIONS, TOOLRUNS, TOOLS
from jangar.app import Options, build_manager
from jangar.controllers.kinds import JOBS
from jangar.dev.cluster import LocalCluster
from jangar.runtime import Client, Manager
from jangar.storage import RunRecorder, apply_migrations
from tests.envtest.auth_support import ADMIN_USER, admin_token
from tests.envtest.controllers_fixtures import eventually, running_controller, settings_for
from tests.envtest.test_controllers_agentrun import finish_job
from tests.envtest.test_controllers_toolrun import finish_pod, tool, toolrun, wait_toolrun


@dataclass
class Running:
    manager: Manager
    client: Client
    base: str
    namespace: str
    kubeconfig: Path
    headers: dict[str, str]


@pytest_asyncio.fixture
async def jangar(envtest: LocalCluster, client: Client, namespace: str) -> AsyncIterator[Running]:
    """The whole jangar process: HTTP API and controllers (orchestration and supporting ones)."""
    settings = settings_for(namespace, JANGAR_LEADER_ELECTION_ENABLED="false")
    api_client = await Client.from_kubeconfig(str(envtest.kubeconfig))
    manager, _ = await build_manager(
        settings, api_client, Options(bind_address="127.0.0.1:0", controllers=True)
    )
    task = asyncio.create_task(manager.start())
    try:
        await eventually(
            lambda: bool(manager.http_port and manager.cache.has_synced()), timeout=60, what="jangar up"
        )
        headers = {"Authorization": f"Bearer {await admin_token(client)}"}
        yield Running(
            manager, client, f"http://127.0.0.1:{manager.http_port}", namespace, envtest.kubeconfig, headers
        )
    finally:
        manager.request_stop()
        await asyncio.wait_for(task, 30)
        await api_client.close()


async def gated(client: Client, ns: str, name: str = "gated", **spec: Any) -> None:
    await client.create(
        APPROVALPOLICIES, {"metadata": {"name": "human", "namespace": ns}, "spec": {"mode": "manual"}}
    )
    steps = [
        {"name": "gate", "kind": "ApprovalGate", "policyRef": "human"},
        {
            "name": "after",
            "kind": "Checkpoint",
            "dependsOn": ["gate"],
            "with": {"by": "{{steps.gate.outputs.decidedBy}}"},
        },
    ]
    await client.create(
        ORCHESTRATIONS, {"metadata": {"name": name, "namespace": ns}, "spec": {"steps": steps, **spec}}
    )


async def phase_of(client: Client, ns: str, name: str) -> str:
    obj = await client.get(ORCHESTRATIONRUNS, name, ns)
    return str((obj.get("status") or {}).get("phase") or "")


async def gate_waiting(client: Client, ns: str, name: str) -> None:
    async def check() -> bool:
        obj = await client.get(ORCHESTRATIONRUNS, name, ns)
        return any(
            s.get("name") == "gate" and s.get("reason") == "AwaitingApproval"
            for s in (obj.get("status") or {}).get("stepStatuses") or ()
        )

    await eventually(check, timeout=60, what=f"{name}/gate waiting")


async def test_http_submit_approve_reject_cancel(jangar: Running) -> None:
    ns, client = jangar.namespace, jangar.client
    await gated(client, ns)
    url = f"{jangar.base}/v1/orchestration-runs"
    async with aiohttp.ClientSession(headers=jangar.headers) as http:
        body = {"namespace": ns, "orchestrationRef": {"name": "gated"}, "deliveryId": "hook-1"}
        async with http.post(url, json=body) as resp:
            assert resp.status == 201, await resp.text()
            first = await resp.json()
        async with http.post(url, json=body) as resp:
            assert resp.status == 200
            assert (await resp.json())["metadata"]["name"] == first["metadata"]["name"]
        name = first["metadata"]["name"]
        assert first["metadata"]["labels"]["jangar.proompteng.ai/delivery-id"] == "hook-1"

        async with http.post(url, json={"namespace": ns, "orchestration": "nope"}) as resp:
            assert resp.status == 404 and "Orchestration" in (await resp.json())["error"]
        async with http.post(url, json=["not", "an", "object"]) as resp:
            assert resp.status == 400
        async with http.get(url, params={"namespace": ns}) as resp:
            assert name in [i["metadata"]["name"] for i in (await resp.json())["items"]]

        step_url = f"{url}/{ns}/{name}/steps/gate"
        await gate_waiting(client, ns, name)
        async with http.post(f"{step_url}/approve", json={"decidedBy": "alice", "reason": "LGTM"}) as resp:
            assert resp.status == 201, await resp.text()
            delivery = await resp.json()
        assert delivery["metadata"]["name"] == f"{name}-gate-decision"
        assert delivery["spec"]["deliveryId"] == f"approval:{name}:gate"
        async with http.post(f"{step_url}/reject", json={"decidedBy": "bob"}) as resp:
            assert resp.status == 409
            assert (await resp.json())["reason"] == "AlreadyDecided"
        async with http.post(f"{url}/{ns}/{name}/steps/after/approve", json={}) as resp:
            assert resp.status == 400  # a Checkpoint is not an ApprovalGate
        await eventually(lambda: _is(client, ns, name, "Succeeded"), timeout=60, what=f"{name} Succeeded")
        done = await client.get(ORCHESTRATIONRUNS, name, ns)
        after = next(s for s in done["status"]["stepStatuses"] if s["name"] == "after")
        # The decider is the authenticated identity: the body's `decidedBy` is not trusted (issue 12).
        assert after["outputs"] == {"by": ADMIN_USER}

        async with http.post(url, json={"namespace": ns, "orchestration": "gated"}) as resp:
            second = (await resp.json())["metadata"]["name"]
        await gate_waiting(client, ns, second)
        async with http.post(f"{url}/{ns}/{second}/steps/gate/reject", json={"decidedBy": "bob"}) as resp:
            assert resp.status == 201
        await eventually(lambda: _is(client, ns, second, "Failed"), timeout=60, what=f"{second} Failed")

        async with http.post(url, json={"namespace": ns, "orchestration": "gated"}) as resp:
            third = (await resp.json())["metadata"]["name"]
        await gate_waiting(client, ns, third)
        async with http.post(f"{url}/{ns}/{third}/cancel") as resp:
            assert resp.status == 202
        await eventually(lambda: _is(client, ns, third, "Cancelled"), timeout=60, what=f"{third} Cancelled")
        async with http.post(f"{url}/{ns}/ghost/cancel") as resp:
            assert resp.status == 404


async def _is(client: Client, ns: str, name: str, phase: str) -> bool:
    return await phase_of(client, ns, name) == phase


async def test_http_refuses_a_run_whose_orchestration_budget_is_exceeded(jangar: Running) -> None:
    ns, client = jangar.namespace, jangar.client
    await client.create(
        BUDGETS, {"metadata": {"name": "zero", "namespace": ns}, "spec": {"limits": {"cpu": "0"}}}
    )
    await gated(client, ns, "costly", policies={"budgetRef": {"name": "zero"}})
    url = f"{jangar.base}/v1/orchestration-runs"
    probes = iter(range(10_000))

    async def refused() -> dict[str, Any] | None:
        async with aiohttp.ClientSession(headers=jangar.headers) as http:
            body = {"namespace": ns, "orchestration": "costly", "deliveryId": f"probe-{next(probes)}"}
            async with http.post(url, json=body) as resp:
                if resp.status == 429:
                    assert resp.headers["Retry-After"]
                    found: dict[str, Any] = await resp.json()
                    return found
                return None

    # A probe may be created while the Budget is not in the cache yet, so each probe has a fresh id.
    body = await eventually(refused, timeout=60, what="429 for the exceeded budget")
    assert (body["reason"], body["scope"]) == ("BudgetExceeded", "budget")


async def agentctl(kubeconfig: Path, namespace: str, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "jangar.agentctl",
        "--kubeconfig",
        str(kubeconfig),
        "-n",
        namespace,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_agentctl_orchestration_run_reject_wait_and_get(jangar: Running) -> None:
    ns, client, kc = jangar.namespace, jangar.client, jangar.kubeconfig
    await gated(client, ns)
    code, out, err = await agentctl(
        kc, ns, "orchestration", "run", "gated", "--delivery-id", "cli-1", "--name", "cli-run"
    )
    assert code == 0, err
    assert out.strip() == "orchestrationrun.orchestration.proompteng.ai/cli-run created"
    code, out, _ = await agentctl(
        kc, ns, "orchestration", "run", "gated", "--delivery-id", "cli-1", "--name", "cli-run"
    )
    assert code == 0 and "unchanged (same delivery id)" in out

    code, _, err = await agentctl(kc, ns, "orchestration", "run", "Bad_Name")
    assert code == 2 and "not a valid Kubernetes name" in err
    code, _, err = await agentctl(kc, ns, "orchestration", "run", "missing")
    assert code == 1 and "Orchestration" in err and "not found" in err

    await gate_waiting(client, ns, "cli-run")
    code, out, err = await agentctl(kc, ns, "reject", "cli-run", "gate", "--reason", "not today")
    assert code == 0, err
    assert "cli-run-gate-decision created (rejected)" in out
    code, _, err = await agentctl(kc, ns, "approve", "cli-run", "gate")
    assert code == 1 and "already decided" in err

    code, out, _ = await agentctl(kc, ns, "orchestration", "wait", "cli-run", "--timeout", "90")
    assert code == 1  # the run failed: wait says so
    assert "Failed" in out.splitlines()[-1]
    code, out, _ = await agentctl(kc, ns, "orchestration", "get", "cli-run", "-o", "json")
    run = json.loads(out)
    assert run["status"]["phase"] == "Failed"
    gate = next(s for s in run["status"]["stepStatuses"] if s["name"] == "gate")
    assert gate["approval"]["decision"] == "rejected" and gate["approval"]["reason"] == "not today"
    code, out, _ = await agentctl(kc, ns, "orchestration", "list", "-o", "wide")
    assert code == 0
    assert out.splitlines()[0].split() == ["NAME", "PHASE", "REASON", "TARGET", "STARTED", "FINISHED"]
    assert any(line.split()[:3] == ["cli-run", "Failed", "ApprovalRejected"] for line in out.splitlines()[1:])


async def test_orchestration_and_tool_runs_reach_postgres(
    envtest: LocalCluster, client: Client, namespace: str, database_url: str
) -> None:
    ns = namespace
    await apply_migrations(database_url)
    recorder = RunRecorder(database_url, initial_backoff=0.05)
    await recorder.start()
    settings = settings_for(ns, JANGAR_AGENTS_CONTROLLER_ENABLED="false")
    try:
        async with running_controller(envtest.kubeconfig, settings, recorder=recorder):
            await client.create(
                ORCHESTRATIONS,
                {
                    "metadata": {"name": "quick", "namespace": ns},
                    "spec": {"steps": [{"name": "only", "kind": "Checkpoint"}]},
                },
            )
            orun = await client.create(
                ORCHESTRATIONRUNS,
                {
                    "metadata": {"name": "quick-1", "namespace": ns},
                    "spec": {"orchestrationRef": {"name": "quick"}, "deliveryId": "q-1"},
                },
            )
            await eventually(
                lambda: _is(client, ns, "quick-1", "Succeeded"), timeout=60, what="quick-1 Succeeded"
            )
            await client.create(TOOLS, tool(ns))
            trun = await client.create(TOOLRUNS, toolrun(ns, "rec"))
            await wait_toolrun(client, ns, "rec", "Running", timeout=60)
            job = await client.get(JOBS, "rec-job", ns)
            await finish_pod(client, ns, job, message=json.dumps({"outputs": {"ok": True}}))
            await finish_job(client, ns, "rec-job", ok=True)
            await wait_toolrun(client, ns, "rec", "Succeeded", timeout=60)

            async def flushed() -> bool:
                return await recorder.flush(timeout=1)

            await eventually(flushed, timeout=30, what="records flushed")
    finally:
        await recorder.close(timeout=5)
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        orow = await conn.fetchrow(
            "SELECT * FROM orchestration_run_records WHERE run_uid = $1", orun["metadata"]["uid"]
        )
        ophases = [
            r["to_phase"]
            for r in await conn.fetch(
                "SELECT to_phase FROM orchestration_run_transitions WHERE run_uid = $1 ORDER BY at, id",
                orun["metadata"]["uid"],
            )
        ]
        trow = await conn.fetchrow(
            "SELECT * FROM tool_run_records WHERE run_uid = $1", trun["metadata"]["uid"]
        )
        tphases = [
            r["to_phase"]
            for r in await conn.fetch(
                "SELECT to_phase FROM tool_run_transitions WHERE run_uid = $1 ORDER BY at, id",
                trun["metadata"]["uid"],
            )
        ]
    finally:
        await conn.close()
    assert orow is not None and trow is not None
    assert (orow["name"], orow["orchestration"], orow["delivery_id"], orow["phase"]) == (
        "quick-1",
        "quick",
        "q-1",
        "Succeeded",
    )
    assert orow["finished_at"] is not None
    assert ophases[-1] == "Succeeded"
    assert (trow["name"], trow["tool"], trow["job_name"], trow["phase"]) == (
        "rec",
        "echo-tool",
        "rec-job",
        "Succeeded",
    )
    assert tphases[-2:] == ["Running", "Succeeded"]
