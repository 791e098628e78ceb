"""issue 13 item 2: CORS on the real `jangar serve` HTTP surface (against a real API server): a listed
origin's preflight is answered without a token and its calls carry the origin back; another origin's
preflight is refused and its calls carry no CORS header; without the setting nothing CORS is sent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest_asyncio

from jangar.app import Options, build_manager
from jangar.dev.cluster import LocalCluster
from jangar.runtime import Client
from jangar.settings import Settings
from tests.envtest.auth_support import admin_token
from tests.support.waiting import eventually

UI = "https://ui.example.com"


async def _serve(kubeconfig: str, namespace: str, origins: str) -> AsyncIterator[tuple[str, dict[str, str]]]:
    settings = Settings.from_env(
        {
            "JANGAR_AGENTS_CONTROLLER_NAMESPACES": namespace,
            "JANGAR_LEADER_ELECTION_ENABLED": "false",
            "AGENTS_CORS_ALLOWED_ORIGINS": origins,  # the 0.9.29 name, as the chart's users may set it
        }
    )
    client = await Client.from_kubeconfig(kubeconfig)
    manager, _ = await build_manager(settings, client, Options(bind_address="127.0.0.1:0", controllers=False))
    task = asyncio.create_task(manager.start())
    try:
        await eventually(lambda: bool(manager.http_port and manager.cache.has_synced()), 30, what="HTTP up")
        headers = {"Authorization": f"Bearer {await admin_token(client)}"}
        yield f"http://127.0.0.1:{manager.http_port}", headers
    finally:
        manager.request_stop()
        await asyncio.wait_for(task, 30)
        await client.close()


@pytest_asyncio.fixture
async def cors_api(envtest_crds: LocalCluster, namespace: str) -> AsyncIterator[tuple[str, dict[str, str]]]:
    async for served in _serve(str(envtest_crds.kubeconfig), namespace, UI):
        yield served


@pytest_asyncio.fixture
async def plain_api(envtest_crds: LocalCluster, namespace: str) -> AsyncIterator[tuple[str, dict[str, str]]]:
    async for served in _serve(str(envtest_crds.kubeconfig), namespace, ""):
        yield served


PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}


async def test_listed_origin(cors_api: tuple[str, dict[str, str]], namespace: str) -> None:
    base, auth = cors_api
    async with aiohttp.ClientSession() as http:
        async with http.options(f"{base}/v1/agent-runs", headers={"Origin": UI, **PREFLIGHT}) as resp:
            assert resp.status == 204
            assert resp.headers["Access-Control-Allow-Origin"] == UI
            assert "POST" in resp.headers["Access-Control-Allow-Methods"]
        url = f"{base}/v1/agent-runs?namespace={namespace}"
        async with http.get(url, headers={"Origin": UI, **auth}) as resp:
            assert resp.status == 200
            assert resp.headers["Access-Control-Allow-Origin"] == UI
        async with http.get(url, headers={"Origin": UI}) as resp:  # no token: 401, readable by the page
            assert resp.status == 401
            assert resp.headers["Access-Control-Allow-Origin"] == UI


async def test_other_origin(cors_api: tuple[str, dict[str, str]], namespace: str) -> None:
    base, auth = cors_api
    other = "https://evil.example"
    async with aiohttp.ClientSession() as http:
        async with http.options(f"{base}/v1/agent-runs", headers={"Origin": other, **PREFLIGHT}) as resp:
            assert resp.status == 403
            assert "Access-Control-Allow-Origin" not in resp.headers
        async with http.get(
            f"{base}/v1/agent-runs?namespace={namespace}", headers={"Origin": other, **auth}
        ) as resp:
            assert resp.status == 200
            assert "Access-Control-Allow-Origin" not in resp.headers


async def test_no_setting_no_cors(plain_api: tuple[str, dict[str, str]], namespace: str) -> None:
    base, auth = plain_api
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{base}/v1/agent-runs?namespace={namespace}", headers={"Origin": UI, **auth}) as resp,
    ):
        assert resp.status == 200
        assert "Access-Control-Allow-Origin" not in resp.headers
