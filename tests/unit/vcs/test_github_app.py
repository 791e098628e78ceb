"""GitHub App tokens: a verifiable RS256 JWT, minting against a local HTTP server, caching, the Secret."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from jangar.vcs import GitHubAppError, GitHubAppTokenMinter, InstallationToken, app_jwt, token_secret_manifest
from jangar.vcs.github_app import refresh_window
from tests.unit.scheduler.objects import agent_run

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def keypair() -> tuple[bytes, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, key.public_key()


def test_jwt_is_rs256_and_verifies_with_the_public_key(keypair: tuple[bytes, Any]) -> None:
    pem, public = keypair
    token = app_jwt(123, pem, now=T0.timestamp())
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = jwt.decode(
        token, public, algorithms=["RS256"], options={"verify_exp": False, "verify_iat": False}
    )
    assert claims == {"iss": "123", "iat": int(T0.timestamp()) - 30, "exp": int(T0.timestamp()) + 540}


class FakeGitHub:
    def __init__(self, public_key: Any) -> None:
        self.public_key = public_key
        self.calls: list[dict[str, Any]] = []
        self.status = 201
        self.expires_at: str | None = "2026-01-01T13:00:00Z"

    async def handle(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        claims = jwt.decode(
            auth.removeprefix("Bearer "),
            self.public_key,
            algorithms=["RS256"],
            options={"verify_exp": False, "verify_iat": False},
        )
        self.calls.append(
            {"path": request.path, "accept": request.headers.get("Accept"), "iss": claims["iss"]}
        )
        if self.status != 201:
            return web.json_response({"message": "Bad credentials"}, status=self.status)
        body: dict[str, Any] = {"token": f"ghs_{len(self.calls)}"}
        if self.expires_at:
            body["expires_at"] = self.expires_at
        return web.json_response(body, status=201)


@pytest.fixture
async def github(keypair: tuple[bytes, Any]) -> AsyncIterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub(keypair[1])
    app = web.Application()
    app.router.add_post("/api/v3/app/installations/{installation}/access_tokens", fake.handle)
    server = TestServer(app)
    await server.start_server()
    try:
        yield fake, str(server.make_url("/api/v3"))
    finally:
        await server.close()


async def test_mint_cache_and_refresh(github: tuple[FakeGitHub, str], keypair: tuple[bytes, Any]) -> None:
    fake, base = github
    now = [T0]
    async with aiohttp.ClientSession() as session:
        minter = GitHubAppTokenMinter(session, clock=lambda: now[0])
        args: dict[str, Any] = {
            "api_base_url": base,
            "app_id": 42,
            "installation_id": 7,
            "private_key_pem": keypair[0],
        }
        first = await minter.token(**args)
        assert first.token == "ghs_1"
        assert first.expires_at == datetime(2026, 1, 1, 13, 0, tzinfo=UTC)
        assert fake.calls == [
            {
                "path": "/api/v3/app/installations/7/access_tokens",
                "accept": "application/vnd.github+json",
                "iss": "42",
            }
        ]
        now[0] = T0 + timedelta(minutes=10)
        assert (await minter.token(**args)).token == "ghs_1"  # reused
        now[0] = T0 + timedelta(minutes=56)
        assert (await minter.token(**args)).token == "ghs_2"  # inside the refresh window: re-minted
        assert len(fake.calls) == 2
        assert "ghs_" not in repr(first)
        # another tenant naming the same installation with another app id or key never gets the cached
        # token: it must mint itself (GitHub decides)
        await minter.token(**{**args, "app_id": 43})
        await minter.token(**{**args, "private_key_pem": keypair[0] + b"\n"})
        assert len(fake.calls) == 4


async def test_expiry_falls_back_to_token_ttl(
    github: tuple[FakeGitHub, str], keypair: tuple[bytes, Any]
) -> None:
    fake, base = github
    fake.expires_at = None
    async with aiohttp.ClientSession() as session:
        minter = GitHubAppTokenMinter(session, clock=lambda: T0)
        token = await minter.token(
            api_base_url=base, app_id=1, installation_id=2, private_key_pem=keypair[0], token_ttl_seconds=900
        )
    assert token.expires_at == T0 + timedelta(seconds=900)


async def test_errors_are_clear(github: tuple[FakeGitHub, str], keypair: tuple[bytes, Any]) -> None:
    fake, base = github
    fake.status = 401
    async with aiohttp.ClientSession() as session:
        minter = GitHubAppTokenMinter(session, clock=lambda: T0)
        with pytest.raises(GitHubAppError, match="401"):
            await minter.token(api_base_url=base, app_id=1, installation_id=2, private_key_pem=keypair[0])
        with pytest.raises(GitHubAppError, match="JWT"):
            await minter.token(api_base_url=base, app_id=1, installation_id=3, private_key_pem=b"not a key")


def test_refresh_window_bounds() -> None:
    assert refresh_window(timedelta(hours=1)) == timedelta(minutes=5)
    assert refresh_window(timedelta(minutes=20)) == timedelta(minutes=2)
    assert refresh_window(timedelta(minutes=1)) == timedelta(seconds=30)


def test_token_secret_manifest_is_owned_by_the_run() -> None:
    secret = token_secret_manifest(agent_run(), InstallationToken("ghs_x", T0))
    assert secret["metadata"]["name"] == "run-1-vcs-token"
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "uid-run-1"
    assert secret["metadata"]["ownerReferences"][0]["controller"] is True
    assert secret["stringData"] == {"token": "ghs_x"}
    assert secret["metadata"]["labels"]["agents.proompteng.ai/agent-run"] == "run-1"


async def test_unreachable_api_is_a_clear_error(keypair: tuple[bytes, Any]) -> None:
    async with aiohttp.ClientSession() as session:
        minter = GitHubAppTokenMinter(session, clock=lambda: T0, timeout_seconds=2)
        with pytest.raises(GitHubAppError, match="cannot reach"):
            await minter.token(
                api_base_url="http://127.0.0.1:9", app_id=1, installation_id=2, private_key_pem=keypair[0]
            )
