"""CORS of the HTTP API: preflights answered before authentication, only listed origins echoed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from jangar.access.testing import ADMIN, StaticAccess
from jangar.server.auth import auth_middleware
from jangar.server.cors import ALLOWED_METHODS, cors_middleware
from jangar.settings import Settings, SettingsError

LISTED = "https://ui.example.com"


async def _client(origins: tuple[str, ...]) -> TestClient[Any, Any]:
    async def runs(request: web.Request) -> web.Response:
        return web.json_response({"items": []})

    async def gone(request: web.Request) -> web.Response:
        raise web.HTTPNotFound(text="no such run")

    access = StaticAccess({"admin-token": ADMIN})
    app = web.Application(middlewares=[cors_middleware(origins), auth_middleware(access)])
    app.router.add_get("/v1/agent-runs", runs)
    app.router.add_get("/v1/agent-runs/gone", gone)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest_asyncio.fixture
async def http() -> AsyncIterator[TestClient[Any, Any]]:
    client = await _client((LISTED, "http://localhost:3000"))
    yield client
    await client.close()


PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type",
}


async def test_preflight_from_listed_origin_is_answered_without_a_token(http: TestClient[Any, Any]) -> None:
    resp = await http.options("/v1/agent-runs", headers={"Origin": LISTED, **PREFLIGHT})
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == LISTED
    assert resp.headers["Access-Control-Allow-Methods"] == ALLOWED_METHODS
    assert resp.headers["Access-Control-Allow-Headers"] == "authorization,content-type"
    assert "Origin" in resp.headers.getall("Vary")
    assert "Access-Control-Allow-Credentials" not in resp.headers


async def test_preflight_from_unlisted_origin_is_refused(http: TestClient[Any, Any]) -> None:
    resp = await http.options("/v1/agent-runs", headers={"Origin": "https://evil.example", **PREFLIGHT})
    assert resp.status == 403
    assert "Access-Control-Allow-Origin" not in resp.headers
    assert (await resp.json())["reason"] == "CorsDenied"


@pytest.mark.parametrize(
    ("origin", "token", "status", "echoed"),
    [
        (LISTED, "admin-token", 200, LISTED),
        ("http://localhost:3000", "admin-token", 200, "http://localhost:3000"),
        (LISTED, None, 401, LISTED),  # the page can read why it was refused
        ("https://evil.example", "admin-token", 200, None),
        ("https://ui.example.com.evil", "admin-token", 200, None),  # no prefix match
        (None, "admin-token", 200, None),  # not a browser cross-origin call
    ],
)
async def test_actual_requests_echo_only_listed_origins(
    http: TestClient[Any, Any], origin: str | None, token: str | None, status: int, echoed: str | None
) -> None:
    headers = {}
    if origin:
        headers["Origin"] = origin
    if token:
        headers["Authorization"] = f"Bearer {token}"
    resp = await http.get("/v1/agent-runs", headers=headers)
    assert resp.status == status
    assert resp.headers.get("Access-Control-Allow-Origin") == echoed


async def test_http_errors_raised_by_handlers_carry_the_headers(http: TestClient[Any, Any]) -> None:
    resp = await http.get(
        "/v1/agent-runs/gone", headers={"Origin": LISTED, "Authorization": "Bearer admin-token"}
    )
    assert resp.status == 404
    assert resp.headers["Access-Control-Allow-Origin"] == LISTED


async def test_wildcard_allows_any_origin_without_echoing_it() -> None:
    client = await _client(("*",))
    try:
        resp = await client.options("/v1/agent-runs", headers={"Origin": "https://any.example", **PREFLIGHT})
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("origin", "echoed"),
    [
        ("https://app.example.com", "https://app.example.com"),
        ("https://a.b.example.com", "https://a.b.example.com"),
        ("https://example.com", None),  # the domain itself is not a subdomain
        ("http://app.example.com", None),  # other scheme
        ("https://app.example.com:8443", None),  # other port
        ("https://appexample.com", None),
        ("https://app.example.com.evil", None),
    ],
)
async def test_wildcard_subdomains(origin: str, echoed: str | None) -> None:
    client = await _client(("https://*.example.com",))
    try:
        resp = await client.get(
            "/v1/agent-runs", headers={"Origin": origin, "Authorization": "Bearer admin-token"}
        )
        assert resp.status == 200
        assert resp.headers.get("Access-Control-Allow-Origin") == echoed
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ()),
        ("https://a.example, http://localhost:3000/", ("https://a.example", "http://localhost:3000")),
        ('["*"]', ("*",)),
        ("https://*.example.com", ("https://*.example.com",)),
    ],
)
def test_setting_parses_origins(value: str, expected: tuple[str, ...]) -> None:
    assert Settings.from_env({"JANGAR_CORS_ALLOWED_ORIGINS": value}).cors_allowed_origins == expected


@pytest.mark.parametrize(
    "value",
    ["a.example", "https://a.example/app", "ftp://a.example", "https://a*.example", "https://x.*.example"],
)
def test_setting_rejects_what_is_not_an_origin(value: str) -> None:
    with pytest.raises(SettingsError, match="JANGAR_CORS_ALLOWED_ORIGINS"):
        Settings.from_env({"JANGAR_CORS_ALLOWED_ORIGINS": value})


def test_setting_reads_the_0_9_29_alias() -> None:
    env = {"AGENTS_CORS_ALLOWED_ORIGINS": "https://a.example"}
    assert Settings.from_env(env).cors_allowed_origins == ("https://a.example",)
