"""The HTTP surface's authentication: open paths, 401 with a Bearer challenge, 403 naming the permission,
approval deciders taken from the identity (never from headers or the body)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from jangar.access import Attributes, UserInfo
from jangar.access.testing import ADMIN, StaticAccess
from jangar.server.auth import auth_middleware, caller, require
from jangar.server.orchestration_api import caller_from

ALICE = UserInfo("alice", groups=("devs",))
NEEDED = Attributes("create", "agents.proompteng.ai", "agentruns", "team-a")


@pytest_asyncio.fixture
async def http() -> AsyncIterator[tuple[TestClient[Any, Any], StaticAccess]]:
    access = StaticAccess({"admin-token": ADMIN, "alice-token": ALICE})

    async def protected(request: web.Request) -> web.Response:
        user = await require(request, NEEDED)
        return web.json_response({"user": user.username})

    async def whoami(request: web.Request) -> web.Response:
        decider = caller_from(request, {"decidedBy": "mallory"})
        return web.json_response({"user": caller(request).username, "decider": decider.user})

    async def open_(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    from jangar.server.agentruns_api import _mapped

    app = web.Application(middlewares=[auth_middleware(access, ("/custom-metrics",))])
    app.router.add_post("/v1/agent-runs", _mapped(protected))
    app.router.add_get("/whoami", whoami)
    for path in ("/health", "/ready", "/healthz", "/readyz", "/metrics", "/custom-metrics"):
        app.router.add_get(path, open_)
    app.router.add_post("/api/agents/implementation-sources/webhooks/github", open_)
    async with TestClient(TestServer(app)) as client:
        yield client, access


@pytest.mark.parametrize(
    "path",
    ["/health", "/ready", "/healthz", "/readyz", "/metrics", "/custom-metrics"],
)
async def test_probes_and_metrics_stay_open(
    http: tuple[TestClient[Any, Any], StaticAccess], path: str
) -> None:
    client, _ = http
    async with client.get(path) as resp:
        assert resp.status == 200


async def test_webhooks_are_left_to_their_hmac(http: tuple[TestClient[Any, Any], StaticAccess]) -> None:
    client, _ = http
    async with client.post("/api/agents/implementation-sources/webhooks/github") as resp:
        assert resp.status == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic YTpi"}, {"Authorization": "Bearer "}],
)
async def test_missing_or_invalid_token_is_401_with_a_challenge(
    http: tuple[TestClient[Any, Any], StaticAccess], headers: dict[str, str]
) -> None:
    client, access = http
    for method, path in (("POST", "/v1/agent-runs"), ("GET", "/whoami"), ("GET", "/nowhere")):
        async with client.request(method, path, headers=headers) as resp:
            assert resp.status == 401, (method, path)
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
            assert (await resp.json())["reason"] == "Unauthorized"
    assert access.asked == []  # nothing was authorized for an unknown caller


async def test_token_without_rights_is_403_naming_the_permission(
    http: tuple[TestClient[Any, Any], StaticAccess],
) -> None:
    client, access = http
    async with client.post("/v1/agent-runs", headers={"Authorization": "Bearer alice-token"}) as resp:
        assert resp.status == 403
        body = await resp.json()
    assert body["reason"] == "Forbidden"
    assert body["error"] == (
        'user "alice" cannot create resource "agentruns" in API group "agents.proompteng.ai" '
        'in the namespace "team-a"'
    )
    assert access.asked == [(ALICE, NEEDED)]
    async with client.post("/v1/agent-runs", headers={"Authorization": "Bearer admin-token"}) as resp:
        assert resp.status == 200
        assert (await resp.json())["user"] == "admin"


async def test_the_decider_is_the_authenticated_identity(
    http: tuple[TestClient[Any, Any], StaticAccess],
) -> None:
    client, _ = http
    headers = {
        "Authorization": "Bearer alice-token",
        "X-Remote-User": "root",
        "X-Remote-Group": "system:masters",
    }
    async with client.get("/whoami", headers=headers) as resp:
        assert await resp.json() == {"user": "alice", "decider": "alice"}
