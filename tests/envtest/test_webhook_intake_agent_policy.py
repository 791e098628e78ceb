"""issue 13 item 3 (0.9.29 row 33): an Agent's `security.allowedImplementationSourceProviders` on the
webhook path, against a real API server and the real intake: a delivery from a provider the Agent does not
allow syncs its ImplementationSpec but starts no AgentRun, and the source's status says why."""

from __future__ import annotations

import yaml

from jangar.api.refs import AGENTRUNS, AGENTS, IMPLEMENTATIONSOURCES, IMPLEMENTATIONSPECS
from tests.envtest.controllers_fixtures import cond
from tests.envtest.test_webhook_intake import (  # noqa: F401  (the `jangar` fixture)
    EXAMPLES,
    GH_SECRET,
    Running,
    gh_headers,
    github_body,
    idle,
    jangar,
    post,
    secret,
)


async def test_a_provider_the_agent_does_not_allow_starts_no_run(jangar: Running) -> None:  # noqa: F811
    ns, client = jangar.namespace, jangar.client
    await secret(client, ns, "github-token", GH_SECRET)
    await client.create(
        AGENTS,
        {
            "metadata": {"name": "linear-only", "namespace": ns},
            "spec": {
                "providerRef": {"name": "codex"},
                "security": {"allowedImplementationSourceProviders": ["linear"]},
            },
        },
    )
    source = yaml.safe_load((EXAMPLES / "implementationsource-github.yaml").read_text())
    source["metadata"]["namespace"] = ns
    source["spec"]["runTemplate"] = {"enabled": True, "agentRef": {"name": "linear-only"}}
    await client.create(IMPLEMENTATIONSOURCES, source)
    body = github_body(number=12)
    status, _ = await post(jangar, "github", body, gh_headers(body, "refused-delivery"))
    assert status == 200
    await idle(jangar)
    assert (await client.list(AGENTRUNS, ns)).items == []
    await client.get(IMPLEMENTATIONSPECS, "proompteng-lab-12-impl", ns)  # the spec is still synced
    obj = await client.get(IMPLEMENTATIONSOURCES, "github-issues", ns)
    assert obj["status"]["lastWebhook"]["status"] == "failed"
    error = cond(obj, "Error")
    assert error["reason"] == "ImplementationSourceProviderNotAllowed"
    assert "allowedImplementationSourceProviders" in error["message"] and "'github'" in error["message"]
