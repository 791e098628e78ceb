"""ImplementationSource webhook intake on the kwok cluster, through `jangar serve` as a real process: the
chart's `implementationsource-github.yaml` (with its Secret) is `WebhookReady`; a signed GitHub delivery
creates its ImplementationSpec once and (with `runTemplate.enabled`) one AgentRun, which the real Job
controller and kwok's fake kubelet run to Succeeded; a replay of the delivery is de-duplicated; a bad or
missing signature gets 401 and changes nothing. The process's `/metrics` count each answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import yaml

from jangar.api.refs import AGENTRUNS, IMPLEMENTATIONSOURCES, IMPLEMENTATIONSPECS
from jangar.dev.cluster import LocalCluster
from jangar.runtime import Client
from tests.envtest.controllers_fixtures import RUNNER_IMAGE, apply_basics, cond, eventually, wait_phase
from tests.envtest.test_webhook_intake import EXAMPLES, GH_SECRET, gh_headers, github_body, secret
from tests.kwok.serving import ServeProcess, serve_process

HOOK = "/api/agents/implementation-sources/webhooks/github"
SPEC = "proompteng-lab-2519-impl"


async def post(served: ServeProcess, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(served.base + HOOK, data=body, headers=headers) as r,
    ):
        return r.status, await r.json()


async def source_with_runs(client: Client, ns: str) -> dict[str, Any]:
    source: dict[str, Any] = yaml.safe_load((EXAMPLES / "implementationsource-github.yaml").read_text())
    source["metadata"]["namespace"] = ns
    source["spec"]["runTemplate"] = {"enabled": True, "agentRef": {"name": "coder"}}
    return await client.create(IMPLEMENTATIONSOURCES, source)


async def test_a_signed_github_delivery_creates_one_spec_and_one_run_that_succeeds(
    kwok_crds: LocalCluster, client: Client, kwok_namespace: str, tmp_path: Path
) -> None:
    ns = kwok_namespace
    await apply_basics(client, ns)
    await secret(client, ns, "github-token", GH_SECRET)
    await source_with_runs(client, ns)
    async with serve_process(
        kwok_crds.kubeconfig, ns, tmp_path, JANGAR_AGENT_RUNNER_IMAGE=RUNNER_IMAGE
    ) as served:

        async def webhook_ready() -> dict[str, Any] | None:
            obj = await client.get(IMPLEMENTATIONSOURCES, "github-issues", ns)
            return obj if cond(obj, "Ready").get("reason") == "WebhookReady" else None

        ready = await eventually(webhook_ready, timeout=60, what=f"WebhookReady\n{served.log_tail()}")
        assert ready["status"]["phase"] == "Ready"

        body = github_body()
        status, answer = await post(served, body, gh_headers(body, "kwok-delivery-1"))
        assert (status, answer["queued"], answer["deduped"]) == (200, 1, 0), answer

        async def one_run() -> list[dict[str, Any]] | None:
            items = (await client.list(AGENTRUNS, ns)).items
            return items or None

        [run] = await eventually(one_run, timeout=60, what=f"the delivery's AgentRun\n{served.log_tail()}")
        assert run["spec"]["implementationSpecRef"] == {"name": SPEC}
        spec = await client.get(IMPLEMENTATIONSPECS, SPEC, ns)
        assert spec["spec"]["source"]["externalId"] == "proompteng/lab#2519"
        done = await wait_phase(client, ns, run["metadata"]["name"], "Succeeded", "Failed", timeout=120)
        assert done["status"]["phase"] == "Succeeded", done["status"]

        async def synced() -> dict[str, Any] | None:
            obj = await client.get(IMPLEMENTATIONSOURCES, "github-issues", ns)
            hook = (obj.get("status") or {}).get("lastWebhook") or {}
            return obj if hook.get("status") == "synced" else None

        source = await eventually(synced, timeout=30, what="lastWebhook synced")

        async def spec_settled() -> dict[str, Any] | None:  # the intake's Synced and the controller's Ready
            obj = await client.get(IMPLEMENTATIONSPECS, SPEC, ns)
            settled = cond(obj, "Synced").get("status") == "True" and cond(obj, "Ready").get("status")
            return obj if settled else None

        spec_rv = (await eventually(spec_settled, timeout=30, what="the spec's status"))["metadata"][
            "resourceVersion"
        ]
        source_rv = source["metadata"]["resourceVersion"]

        # the same delivery again (GitHub redelivers on a timeout): de-duplicated, nothing changes
        status, answer = await post(served, body, gh_headers(body, "kwok-delivery-1"))
        assert (status, answer["queued"], answer["deduped"]) == (200, 0, 1), answer

        # a wrong signature, and none at all: 401, nothing changes
        other = github_body(number=7)
        status, answer = await post(served, other, gh_headers(other, "kwok-delivery-2", "not-the-secret"))
        assert status == 401 and answer["ok"] is False
        unsigned = {**gh_headers(other, "kwok-delivery-3"), "x-hub-signature-256": ""}
        assert (await post(served, other, unsigned))[0] == 401

        deliveries = "jangar_webhook_deliveries_total"
        assert served.metric(deliveries, provider="github", outcome="queued") == 1
        assert served.metric(deliveries, provider="github", outcome="deduped") == 1
        assert served.metric(deliveries, provider="github", outcome="unauthorized") == 2
        assert served.metric("jangar_webhook_processed_total", provider="github", outcome="synced") == 1

        names = sorted(s["metadata"]["name"] for s in (await client.list(IMPLEMENTATIONSPECS, ns)).items)
        assert names == sorted([SPEC, "task"])  # the delivery's, and apply_basics' own
        assert (await client.get(IMPLEMENTATIONSPECS, SPEC, ns))["metadata"]["resourceVersion"] == spec_rv
        after = await client.get(IMPLEMENTATIONSOURCES, "github-issues", ns)
        assert after["metadata"]["resourceVersion"] == source_rv
        assert len((await client.list(AGENTRUNS, ns)).items) == 1
