"""GitHub App installation tokens refreshed before expiry, on a real API server with a fake GitHub.

The fake token endpoint hands out tokens that expire 40 s after they are minted, so the controller's refresh
time (30 s before expiry, the minimum window) comes 10 s after each mint: the run's token Secret must get a
new token, with new expiry annotations, while the Job runs, and the Job's pod spec never carries a token.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from jangar.api.contract import ANNOTATION_TOKEN_EXPIRES_AT, ANNOTATION_TOKEN_REFRESH_AT
from jangar.controllers.kinds import AGENTRUNS, JOBS, SECRETBINDINGS, SECRETS, VCSPROVIDERS
from jangar.runtime import Client, NotFoundError
from tests.envtest.controllers_fixtures import (
    ControllerProcess,
    apply_basics,
    eventually,
    run,
    wait_phase,
)
from tests.envtest.test_controllers_agentrun import finish_job

LIFETIME = timedelta(seconds=40)


class FakeGitHub:
    def __init__(self) -> None:
        self.minted: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        assert request.headers["Authorization"].startswith("Bearer ")
        token = f"ghs_{len(self.minted) + 1}"
        self.minted.append(request.match_info["installation"])
        expires = (datetime.now(UTC) + LIFETIME).strftime("%Y-%m-%dT%H:%M:%SZ")
        return web.json_response({"token": token, "expires_at": expires}, status=201)


@pytest_asyncio.fixture
async def github() -> AsyncIterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub()
    app = web.Application()
    app.router.add_post("/api/v3/app/installations/{installation}/access_tokens", fake.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield fake, str(server.make_url("/api/v3"))
    finally:
        await server.close()


def private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


async def token_of(client: Client, ns: str) -> tuple[str, dict[str, str]]:
    secret = await client.get(SECRETS, "tr-vcs-token", ns)
    return base64.b64decode(secret["data"]["token"]).decode(), secret["metadata"]["annotations"]


async def test_a_running_jobs_token_is_refreshed_before_it_expires(
    controller: ControllerProcess, client: Client, namespace: str, github: tuple[FakeGitHub, str]
) -> None:
    fake, base = github
    await apply_basics(client, namespace)
    await client.create(
        SECRETS,
        {
            "metadata": {"name": "app-key", "namespace": namespace},
            "stringData": {"privateKey": private_key_pem()},
        },
    )
    await client.create(
        VCSPROVIDERS,
        {
            "metadata": {"name": "gh", "namespace": namespace},
            "spec": {
                "provider": "github",
                "apiBaseUrl": base,
                "auth": {
                    "method": "app",
                    "app": {"appId": 12, "installationId": 34, "privateKeySecretRef": {"name": "app-key"}},
                },
                "defaults": {"baseBranch": "main", "branchTemplate": "agent/{{ agentRun.name }}"},
            },
        },
    )
    await client.create(
        SECRETBINDINGS,
        {
            "metadata": {"name": "vcs", "namespace": namespace},
            "spec": {"subjects": [{"kind": "Agent", "name": "coder"}], "allowedSecrets": ["app-key"]},
        },
    )
    spec = {"vcsRef": {"name": "gh"}, "parameters": {"prompt": "hi", "repository": "acme/demo"}}
    await client.create(AGENTRUNS, run(namespace, "tr", **spec))
    await wait_phase(client, namespace, "tr", "Running", timeout=60)

    first, annotations = await eventually(
        lambda: token_of(client, namespace), timeout=30, ignoring=(NotFoundError,), what="token Secret"
    )
    assert first == "ghs_1" and fake.minted == ["34"]
    expires = datetime.fromisoformat(annotations[ANNOTATION_TOKEN_EXPIRES_AT].replace("Z", "+00:00"))
    refresh = datetime.fromisoformat(annotations[ANNOTATION_TOKEN_REFRESH_AT].replace("Z", "+00:00"))
    assert expires - refresh == timedelta(seconds=30)

    job: dict[str, Any] = await client.get(JOBS, "tr-job", namespace)
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e for e in container.get("env", [])}
    assert env["VCS_TOKEN_FILE"]["value"] == "/var/run/secrets/agents/vcs/token/token"
    # the reference's variables: from the Secret (the token at container start), never a literal
    for name in ("GITHUB_TOKEN", "GH_TOKEN", "VCS_TOKEN"):
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "tr-vcs-token", "key": "token"}, env[name]
    assert "ghs_" not in str(job)
    volume = next(v for v in pod["volumes"] if (v.get("secret") or {}).get("secretName") == "tr-vcs-token")
    mount = next(m for m in container["volumeMounts"] if m["name"] == volume["name"])
    assert mount["mountPath"] == "/var/run/secrets/agents/vcs/token" and "subPath" not in mount

    async def refreshed() -> tuple[str, dict[str, str]] | None:
        token, notes = await token_of(client, namespace)
        return (token, notes) if token != first else None

    second, later = await eventually(refreshed, timeout=60, interval=0.5, what="a refreshed token")
    assert second == "ghs_2"
    assert later[ANNOTATION_TOKEN_EXPIRES_AT] > annotations[ANNOTATION_TOKEN_EXPIRES_AT]
    # ... and again: the controller requeued itself for the new refresh time.
    third, _ = await eventually(
        lambda: _changed(client, namespace, second), timeout=60, interval=0.5, what="a second refresh"
    )
    assert third == "ghs_3"

    await finish_job(client, namespace, "tr-job", ok=True)
    await wait_phase(client, namespace, "tr", "Succeeded", timeout=60)


async def _changed(client: Client, ns: str, previous: str) -> tuple[str, dict[str, str]] | None:
    token, notes = await token_of(client, ns)
    return (token, notes) if token != previous else None
