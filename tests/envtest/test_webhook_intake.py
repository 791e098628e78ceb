"""ImplementationSource webhooks through the real `jangar serve` composition root against a real API server.

The chart's `implementationsource-github.yaml` / `-linear.yaml` with their Secrets become `WebhookReady`
(the process serves the endpoint), a signed GitHub delivery creates its ImplementationSpec once, a replay is
de-duplicated, a bad signature gets 401 and changes nothing, the Linear timestamp window is enforced, and a
source with `runTemplate.enabled` also starts exactly one AgentRun per delivery.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio
import yaml

from jangar.api.contract import LABEL_SOURCE_PROVIDER
from jangar.api.refs import AGENTRUNS, IMPLEMENTATIONSOURCES, IMPLEMENTATIONSPECS
from jangar.app import Options, build_manager
from jangar.dev.cluster import LocalCluster
from jangar.runtime import Client, Manager, NotFoundError
from jangar.runtime.resources import SECRETS
from jangar.services.intake import WebhookIntake, sign_github, sign_linear
from jangar.settings import Settings
from tests.envtest.controllers_fixtures import cond
from tests.support.waiting import eventually

EXAMPLES = Path(__file__).resolve().parents[2] / "charts" / "agents" / "examples"
GH_SECRET = "gh-hook-secret"
LINEAR_SECRET = "linear-hook-secret"


@dataclass
class Running:
    manager: Manager
    client: Client
    intake: WebhookIntake
    base: str
    namespace: str


@pytest_asyncio.fixture
async def jangar(envtest_crds: LocalCluster, namespace: str) -> AsyncIterator[Running]:
    settings = Settings.from_env(
        {
            "JANGAR_AGENTS_CONTROLLER_NAMESPACES": namespace,
            "JANGAR_LEADER_ELECTION_ENABLED": "false",
        }
    )
    client = await Client.from_kubeconfig(str(envtest_crds.kubeconfig))
    manager, _ = await build_manager(settings, client, Options(bind_address="127.0.0.1:0"))
    intake = next(r for r in manager._other_runnables if isinstance(r, WebhookIntake))
    task = asyncio.create_task(manager.start())
    try:
        for _ in range(600):
            if manager.http_port and manager.cache.has_synced():
                break
            await asyncio.sleep(0.05)
        yield Running(manager, client, intake, f"http://127.0.0.1:{manager.http_port}", namespace)
    finally:
        manager.request_stop()
        await asyncio.wait_for(task, 30)
        await client.close()


async def apply_example(client: Client, namespace: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    obj["metadata"]["namespace"] = namespace
    return await client.create(IMPLEMENTATIONSOURCES, obj)


async def secret(client: Client, namespace: str, name: str, token: str) -> None:
    await client.create(
        SECRETS, {"metadata": {"name": name, "namespace": namespace}, "stringData": {"token": token}}
    )


async def ready_reason(client: Client, ns: str, name: str) -> str | None:
    obj = await client.get(IMPLEMENTATIONSOURCES, name, ns)
    return str(cond(obj, "Ready").get("reason") or "") or None


def github_body(number: int = 2519, labels: tuple[str, ...] = ("codex",), title: str = "Fix it") -> bytes:
    return json.dumps(
        {
            "action": "opened",
            "issue": {
                "number": number,
                "title": title,
                "body": "the body",
                "labels": [{"name": label} for label in labels],
                "html_url": f"https://github.com/proompteng/lab/issues/{number}",
                "updated_at": "2026-02-01T00:00:00Z",
            },
            "repository": {"full_name": "proompteng/lab"},
        }
    ).encode()


async def post(
    running: Running, provider: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    url = f"{running.base}/api/agents/implementation-sources/webhooks/{provider}"
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as resp:
        return resp.status, await resp.json()


def gh_headers(body: bytes, delivery: str, secret_value: str = GH_SECRET) -> dict[str, str]:
    return {
        "x-github-event": "issues",
        "x-github-delivery": delivery,
        "x-hub-signature-256": sign_github(secret_value.encode(), body),
        "content-type": "application/json",
    }


async def specs(client: Client, ns: str) -> list[dict[str, Any]]:
    return (await client.list(IMPLEMENTATIONSPECS, ns)).items


async def idle(running: Running) -> None:
    await eventually(running.intake.idle, timeout=30, what="the webhook queue drained")


async def test_chart_sources_reconcile_to_webhook_ready(jangar: Running) -> None:
    ns = jangar.namespace
    await apply_example(jangar.client, ns, "implementationsource-github.yaml")
    await apply_example(jangar.client, ns, "implementationsource-linear.yaml")
    # no Secrets yet: not ready, and it says why
    await eventually(
        lambda: ready_reason(jangar.client, ns, "github-issues"), timeout=30, what="github source checked"
    )
    assert await ready_reason(jangar.client, ns, "github-issues") == "SecretNotFound"
    await secret(jangar.client, ns, "github-token", GH_SECRET)
    await secret(jangar.client, ns, "linear-token", LINEAR_SECRET)
    for name in ("github-issues", "linear-issues"):

        async def is_ready(name: str = name) -> bool:
            return await ready_reason(jangar.client, ns, name) == "WebhookReady"

        # the Secret is not watched: the source re-checks on its 60 s timer
        await eventually(is_ready, timeout=90, interval=0.5, what=f"{name} WebhookReady")
        obj = await jangar.client.get(IMPLEMENTATIONSOURCES, name, ns)
        assert obj["status"]["phase"] == "Ready"


async def test_signed_github_delivery_creates_the_spec_once(jangar: Running) -> None:
    ns, client = jangar.namespace, jangar.client
    await secret(client, ns, "github-token", GH_SECRET)
    await apply_example(client, ns, "implementationsource-github.yaml")
    body = github_body()

    status, answer = await post(jangar, "github", body, gh_headers(body, "delivery-1"))
    assert (status, answer["queued"], answer["deduped"]) == (200, 1, 0)
    assert answer["idempotencyKey"] == "github:delivery-1"
    await idle(jangar)
    spec = await client.get(IMPLEMENTATIONSPECS, "proompteng-lab-2519-impl", ns)
    assert spec["spec"]["source"] == {
        "provider": "github",
        "externalId": "proompteng/lab#2519",
        "url": "https://github.com/proompteng/lab/issues/2519",
    }
    assert (spec["spec"]["summary"], spec["spec"]["text"], spec["spec"]["labels"]) == (
        "Fix it",
        "the body",
        ["codex"],
    )
    assert spec["metadata"]["labels"][LABEL_SOURCE_PROVIDER] == "github"
    assert spec["status"]["sourceVersion"] == "2026-02-01T00:00:00Z"
    assert cond(spec, "Synced")["status"] == "True"
    source = await client.get(IMPLEMENTATIONSOURCES, "github-issues", ns)
    hook = source["status"]["lastWebhook"]
    assert (hook["status"], hook["attempts"], hook["deliveryId"]) == ("synced", 1, "delivery-1")
    assert hook["idempotencyKey"] == "github:delivery-1"
    assert cond(source, "Synced")["reason"] == "WebhookSynced"
    assert cond(source, "Error")["status"] == "False"

    # the ImplementationSpec controller writes its own status after the intake: take the version once it
    # has (a replay must change nothing from then on)
    async def settled() -> dict[str, Any] | None:
        obj = await client.get(IMPLEMENTATIONSPECS, "proompteng-lab-2519-impl", ns)
        status = obj.get("status") or {}
        done = (
            status.get("phase") == "Ready"
            and status.get("observedGeneration") == obj["metadata"]["generation"]
        )
        return obj if done else None

    spec = await eventually(settled, timeout=30, what="the ImplementationSpec reconciled")
    rv = spec["metadata"]["resourceVersion"]

    # a replay of the same delivery is de-duplicated: nothing is queued, nothing changes
    status, answer = await post(jangar, "github", body, gh_headers(body, "delivery-1"))
    assert (status, answer["queued"], answer["deduped"]) == (200, 0, 1)
    await idle(jangar)
    assert len(await specs(client, ns)) == 1
    assert (await client.get(IMPLEMENTATIONSPECS, "proompteng-lab-2519-impl", ns))["metadata"][
        "resourceVersion"
    ] == rv

    # a bad signature: 401 and nothing changes
    source_rv = (await client.get(IMPLEMENTATIONSOURCES, "github-issues", ns))["metadata"]["resourceVersion"]
    other = github_body(number=7)
    status, answer = await post(jangar, "github", other, gh_headers(other, "delivery-2", "wrong-secret"))
    assert status == 401 and answer["ok"] is False
    status, _ = await post(
        jangar, "github", other, {**gh_headers(other, "delivery-2"), "x-hub-signature-256": ""}
    )
    assert status == 401
    await idle(jangar)
    assert [s["metadata"]["name"] for s in await specs(client, ns)] == ["proompteng-lab-2519-impl"]
    source = await client.get(IMPLEMENTATIONSOURCES, "github-issues", ns)
    assert source["metadata"]["resourceVersion"] == source_rv

    # an edit of the issue (a new delivery) updates the same spec
    edited = github_body(title="Fix it properly")
    status, answer = await post(jangar, "github", edited, gh_headers(edited, "delivery-3"))
    assert (status, answer["queued"]) == (200, 1)
    await idle(jangar)
    spec = await client.get(IMPLEMENTATIONSPECS, "proompteng-lab-2519-impl", ns)
    assert spec["spec"]["summary"] == "Fix it properly"
    assert len(await specs(client, ns)) == 1


async def test_requests_that_are_not_accepted(jangar: Running) -> None:
    ns, client = jangar.namespace, jangar.client
    body = github_body()
    assert (await post(jangar, "gitlab", body, gh_headers(body, "x")))[0] == 404
    assert (await post(jangar, "github", body, gh_headers(body, "x")))[0] == 404  # no source yet
    await secret(client, ns, "github-token", GH_SECRET)
    await apply_example(client, ns, "implementationsource-github.yaml")
    assert (await post(jangar, "github", b"", gh_headers(b"", "x")))[0] == 400
    assert (await post(jangar, "github", b"{nope", gh_headers(b"{nope", "x")))[0] == 400
    status, answer = await post(jangar, "github", body, {**gh_headers(body, "x"), "x-github-event": "push"})
    assert (status, answer) == (200, {"ok": True, "ignored": True})
    unlabelled = github_body(labels=("bug",))
    assert (await post(jangar, "github", unlabelled, gh_headers(unlabelled, "y")))[0] == 404  # scope
    broken = json.dumps(
        {"issue": {"title": "no number"}, "repository": {"full_name": "proompteng/lab"}}
    ).encode()
    assert (await post(jangar, "github", broken, gh_headers(broken, "z")))[0] == 400
    source = await client.get(IMPLEMENTATIONSOURCES, "github-issues", ns)
    assert cond(source, "Error")["reason"] == "InvalidPayload"
    url = f"{jangar.base}/api/agents/implementation-sources/webhooks/github"
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 405
    await idle(jangar)
    assert await specs(client, ns) == []


async def test_linear_timestamp_window(jangar: Running) -> None:
    ns, client = jangar.namespace, jangar.client
    await secret(client, ns, "linear-token", LINEAR_SECRET)
    await apply_example(client, ns, "implementationsource-linear.yaml")

    def body(stamp_ms: float) -> bytes:
        return json.dumps(
            {
                "action": "create",
                "webhookTimestamp": int(stamp_ms),
                "data": {
                    "id": "issue-uuid",
                    "identifier": "ENG-42",
                    "title": "From Linear",
                    "team": {"key": "ENG"},
                    "labels": [{"name": "codex"}],
                    "updatedAt": "2026-02-02T00:00:00Z",
                },
            }
        ).encode()

    def headers(raw: bytes) -> dict[str, str]:
        return {
            "linear-event": "Issue",
            "linear-delivery": "lin-1",
            "linear-signature": sign_linear(LINEAR_SECRET.encode(), raw),
        }

    stale = body((time.time() - 120) * 1000)
    status, answer = await post(jangar, "linear", stale, headers(stale))
    assert status == 400 and "webhookTimestamp" in answer["error"]
    await idle(jangar)
    assert await specs(client, ns) == []
    fresh = body(time.time() * 1000)
    status, answer = await post(jangar, "linear", fresh, headers(fresh))
    assert (status, answer["queued"], answer["idempotencyKey"]) == (200, 1, "linear:lin-1")
    await idle(jangar)
    spec = await client.get(IMPLEMENTATIONSPECS, "linear-eng-42-impl", ns)
    assert spec["spec"]["source"]["externalId"] == "ENG-42"
    source = await client.get(IMPLEMENTATIONSOURCES, "linear-issues", ns)
    assert source["status"]["lastWebhook"]["status"] == "synced"


async def test_run_template_starts_one_run_per_delivery(jangar: Running) -> None:
    ns, client = jangar.namespace, jangar.client
    await secret(client, ns, "github-token", GH_SECRET)
    source = yaml.safe_load((EXAMPLES / "implementationsource-github.yaml").read_text())
    source["metadata"]["namespace"] = ns
    source["spec"]["runTemplate"] = {
        "enabled": True,
        "agentRef": {"name": "codex-agent"},
        "parameters": {"stage": "implement"},
    }
    await client.create(IMPLEMENTATIONSOURCES, source)
    body = github_body(number=11)
    for _ in range(2):  # the second is a replay
        status, _ = await post(jangar, "github", body, gh_headers(body, "run-delivery"))
        assert status == 200
        await idle(jangar)
    runs = (await client.list(AGENTRUNS, ns)).items
    assert len(runs) == 1
    run = runs[0]
    assert run["spec"]["implementationSpecRef"] == {"name": "proompteng-lab-11-impl"}
    assert run["spec"]["agentRef"] == {"name": "codex-agent"}
    params = run["spec"]["parameters"]
    assert (params["repository"], params["issueNumber"], params["stage"]) == (
        "proompteng/lab",
        "11",
        "implement",
    )
    hook = (await client.get(IMPLEMENTATIONSOURCES, "github-issues", ns))["status"]["lastWebhook"]
    assert hook["status"] == "synced"
    try:
        await client.get(IMPLEMENTATIONSPECS, "proompteng-lab-11-impl", ns)
    except NotFoundError as exc:  # pragma: no cover - the assertion below explains
        raise AssertionError("the run's ImplementationSpec was not created") from exc
