"""Supporting reconcilers against a real API server: Memory, ImplementationSpec, ImplementationSource,
AgentProvider and SecretBinding status, with observedGeneration and no rewrite when nothing changed."""

from __future__ import annotations

import asyncio
from typing import Any

from jangar.controllers.kinds import (
    IMPLEMENTATIONSOURCES,
    IMPLEMENTATIONSPECS,
    MEMORIES,
    SECRETBINDINGS,
    SECRETS,
)
from jangar.runtime import Client, ResourceRef
from tests.envtest.controllers_fixtures import (
    ControllerProcess,
    cond,
    eventually,
)


async def ready_reason(client: Client, ref: ResourceRef, ns: str, name: str, reason: str) -> Any:
    obj = await client.get(ref, name, ns)
    return obj if cond(obj, "Ready").get("reason") == reason else None


async def test_memory_follows_its_secret(
    controller: ControllerProcess, client: Client, namespace: str
) -> None:
    body = {
        "metadata": {"name": "mem", "namespace": namespace},
        "spec": {"type": "postgres", "connection": {"secretRef": {"name": "pg", "key": "url"}}},
    }
    await client.create(MEMORIES, body)
    obj = await eventually(
        lambda: ready_reason(client, MEMORIES, namespace, "mem", "SecretNotFound"), what="missing"
    )
    assert cond(obj, "Unreachable")["status"] == "True"
    await client.create(
        SECRETS, {"metadata": {"name": "pg", "namespace": namespace}, "stringData": {"other": "x"}}
    )
    await client.patch(MEMORIES, "mem", {"spec": {"capabilities": ["vector"]}}, namespace=namespace)
    obj = await eventually(
        lambda: ready_reason(client, MEMORIES, namespace, "mem", "SecretKeyMissing"), what="key"
    )
    assert cond(obj, "InvalidSpec")["status"] == "True"
    assert cond(obj, "Unreachable")["status"] == "False"
    await client.patch(SECRETS, "pg", {"stringData": {"url": "postgresql://x"}}, namespace=namespace)
    await client.patch(MEMORIES, "mem", {"spec": {"capabilities": ["vector", "kv"]}}, namespace=namespace)
    obj = await eventually(
        lambda: ready_reason(client, MEMORIES, namespace, "mem", "SecretResolved"), what="ok"
    )
    assert obj["status"]["phase"] == "Ready"
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    assert "lastCheckedAt" not in obj["status"]  # no timestamp churn
    rv = obj["metadata"]["resourceVersion"]
    await asyncio.sleep(1.5)
    assert (await client.get(MEMORIES, "mem", namespace))["metadata"]["resourceVersion"] == rv


async def test_implementation_spec_and_source(
    controller: ControllerProcess, client: Client, namespace: str
) -> None:
    await client.create(
        IMPLEMENTATIONSPECS,
        {
            "metadata": {"name": "too-many", "namespace": namespace},
            "spec": {"text": "x", "acceptanceCriteria": [f"c{i}" for i in range(50)]},
        },
    )
    obj = await eventually(
        lambda: ready_reason(client, IMPLEMENTATIONSPECS, namespace, "too-many", "ValidSpec"), what="valid"
    )
    assert obj["status"]["syncedAt"]
    await client.create(
        IMPLEMENTATIONSOURCES,
        {
            "metadata": {"name": "gh", "namespace": namespace},
            "spec": {"provider": "github", "auth": {"secretRef": {"name": "hook"}}},
        },
    )
    obj = await eventually(
        lambda: ready_reason(client, IMPLEMENTATIONSOURCES, namespace, "gh", "WebhookDisabled"),
        what="disabled",
    )
    assert obj["status"]["phase"] == "Disabled"
    await client.create(
        SECRETS, {"metadata": {"name": "hook", "namespace": namespace}, "stringData": {"token": "t"}}
    )
    await client.patch(
        IMPLEMENTATIONSOURCES, "gh", {"spec": {"webhook": {"enabled": True}}}, namespace=namespace
    )
    await eventually(
        lambda: ready_reason(client, IMPLEMENTATIONSOURCES, namespace, "gh", "WebhookNotServed"),
        what="not served (the fixture has no HTTP server; webhook tests: test_webhook_intake.py)",
    )


async def test_secret_binding_needs_subjects_and_secrets(
    controller: ControllerProcess, client: Client, namespace: str
) -> None:
    await client.create(
        SECRETBINDINGS,
        {
            "metadata": {"name": "sb", "namespace": namespace},
            "spec": {"subjects": [{"kind": "Agent", "name": "coder"}], "allowedSecrets": ["a"]},
        },
    )
    obj = await eventually(
        lambda: ready_reason(client, SECRETBINDINGS, namespace, "sb", "Ready"), what="ready"
    )
    assert cond(obj, "InvalidSpec")["status"] == "False"
