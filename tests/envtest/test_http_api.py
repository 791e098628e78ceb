"""The jangar process's HTTP surface against a real API server: probes, metrics and /v1/agent-runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest_asyncio

from jangar.api.refs import AGENTRUNS
from jangar.app import Options, build_manager
from jangar.dev.cluster import LocalCluster
from jangar.runtime import Client, Manager
from jangar.settings import Settings
from tests.envtest.auth_support import admin_token
from tests.support.waiting import eventually


@dataclass
class Running:
    manager: Manager
    client: Client
    base: str
    namespace: str
    headers: dict[str, str]


@pytest_asyncio.fixture
async def jangar_api(envtest_crds: LocalCluster, namespace: str) -> AsyncIterator[Running]:
    settings = Settings.from_env(
        {
            "JANGAR_AGENTS_CONTROLLER_NAMESPACES": namespace,
            "JANGAR_AGENTS_CONTROLLER_CONCURRENCY_NAMESPACE": "1",
            "JANGAR_AGENTS_CONTROLLER_QUEUE_NAMESPACE": "1",
            "JANGAR_LEADER_ELECTION_ENABLED": "false",
        }
    )
    client = await Client.from_kubeconfig(str(envtest_crds.kubeconfig))
    manager, _ = await build_manager(settings, client, Options(bind_address="127.0.0.1:0", controllers=False))
    task = asyncio.create_task(manager.start())
    try:
        for _ in range(300):
            if manager.http_port and manager.cache.has_synced():
                break
            await asyncio.sleep(0.05)
        headers = {"Authorization": f"Bearer {await admin_token(client)}"}
        yield Running(manager, client, f"http://127.0.0.1:{manager.http_port}", namespace, headers)
    finally:
        manager.request_stop()
        await asyncio.wait_for(task, 30)
        await client.close()


async def _wait_cached(running: Running, count: int) -> None:
    await eventually(
        lambda: len(running.manager.cache.list(AGENTRUNS, running.namespace)) >= count,
        what=f"{count} runs in the cache",
    )


async def test_probes_and_metrics(jangar_api: Running) -> None:
    async with aiohttp.ClientSession() as http:  # probes and metrics need no token
        async with http.get(f"{jangar_api.base}/health") as resp:
            assert resp.status == 200
            body = await resp.json()
            assert body["status"] == "ok"
            assert body["database"] == {"configured": False}
        async with http.get(f"{jangar_api.base}/ready") as resp:
            assert resp.status == 200
            assert (await resp.json())["checks"]["cache-sync"] == "ok"
        async with http.get(f"{jangar_api.base}/metrics") as resp:
            text = await resp.text()
            assert "rest_client_requests_total" in text
            assert "_created" not in text


async def test_submit_get_list_and_queue_limit(jangar_api: Running) -> None:
    url = f"{jangar_api.base}/v1/agent-runs"
    body = {
        "namespace": jangar_api.namespace,
        "agentRef": {"name": "codex-agent"},
        "implementationSpecRef": {"name": "impl"},
        "runtime": {"type": "job"},
        "parameters": {"issue": 7},
    }
    async with aiohttp.ClientSession(headers=jangar_api.headers) as http:
        async with http.post(url, json=body, headers={"Idempotency-Key": "k-1"}) as resp:
            assert resp.status == 201, await resp.text()
            first = await resp.json()
        # The same key again: the same run, not a second one.
        async with http.post(url, json=body, headers={"Idempotency-Key": "k-1"}) as resp:
            assert resp.status == 200
            assert (await resp.json())["metadata"]["uid"] == first["metadata"]["uid"]
        async with http.post(url, json=body) as resp:
            assert resp.status == 201
        await _wait_cached(jangar_api, 2)
        # No controller runs here: admission would start one of the two runs and queue the other
        # (concurrency 1, queue 1), so a third is refused, as the controller would reject it.
        async with http.post(url, json=body) as resp:
            assert resp.status == 429
            assert resp.headers["Retry-After"] == "30"
            refusal = await resp.json()
            assert (refusal["reason"], refusal["scope"], refusal["limit"]) == (
                "QueueLimitExceeded",
                "namespace",
                1,
            )
        # The replay of an accepted submission is answered even with the queue full.
        async with http.post(url, json=body, headers={"Idempotency-Key": "k-1"}) as resp:
            assert resp.status == 200
        async with http.get(url, params={"namespace": jangar_api.namespace}) as resp:
            items = (await resp.json())["items"]
            assert len(items) == 2
            assert items[0]["spec"]["parameters"] == {"issue": "7"}
        name = first["metadata"]["name"]
        async with http.get(f"{url}/{jangar_api.namespace}/{name}") as resp:
            assert resp.status == 200
            assert "managedFields" not in (await resp.json())["metadata"]
        async with http.post(f"{url}/{jangar_api.namespace}/{name}/cancel") as resp:
            assert resp.status == 202
            assert (await resp.json())["metadata"]["annotations"]["agents.proompteng.ai/cancel"] == "true"
        async with http.post(url, json={**body, "runtime": {"type": "lambda"}}) as resp:
            assert resp.status == 400
            assert "runtime must be one of" in (await resp.json())["error"]
        async with http.post(url, json={**body, "namespace": "elsewhere"}) as resp:
            assert resp.status == 403
        async with http.post(url, json={**body, "namespace": "*"}) as resp:
            assert resp.status == 400
        async with http.post(f"{url}/{jangar_api.namespace}/missing/cancel") as resp:
            assert resp.status == 404


async def test_same_name_without_idempotency_key_conflicts(jangar_api: Running) -> None:
    url = f"{jangar_api.base}/v1/agent-runs"
    body = {
        "namespace": jangar_api.namespace,
        "name": "fixed",
        "agentRef": {"name": "codex-agent"},
        "implementationSpecRef": {"name": "impl"},
        "runtime": {"type": "workflow"},
    }
    async with aiohttp.ClientSession(headers=jangar_api.headers) as http:
        async with http.post(url, json=body) as resp:
            assert resp.status == 201, await resp.text()
            created = await resp.json()
            assert created["spec"]["workflow"]["steps"][0]["name"] == "implement"
        # Without a key this is not a replay of the first submission: it must not return that run.
        async with http.post(url, json=body) as resp:
            assert resp.status == 409
            assert "already exists" in (await resp.json())["error"]
        # Readable at once: reads go to the API server, not the (possibly lagging) cache.
        async with http.get(f"{url}/{jangar_api.namespace}/fixed") as resp:
            assert resp.status == 200
