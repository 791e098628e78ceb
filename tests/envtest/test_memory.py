"""Memory against a real API server: the chart's memory-sample.yaml (Secret, Memory, SecretBinding) with the
Agent, AgentProvider and ImplementationSpec samples reconciles truthfully, and what reaches the runner is
`run.json` `memory: {name, type, connectionRef}` plus the Secret only when the run lists it in `spec.secrets`.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from jangar.controllers.kinds import (
    AGENTPROVIDERS,
    AGENTRUNS,
    AGENTS,
    CONFIGMAPS,
    IMPLEMENTATIONSPECS,
    JOBS,
    MEMORIES,
    SECRETBINDINGS,
    SECRETS,
)
from jangar.runtime import Client, NotFoundError, ResourceRef
from tests.chart.helm import CHART
from tests.envtest.controllers_fixtures import ControllerProcess, cond, eventually, wait_phase

KINDS: dict[str, ResourceRef] = {
    "Secret": SECRETS,
    "Memory": MEMORIES,
    "SecretBinding": SECRETBINDINGS,
    "Agent": AGENTS,
    "AgentProvider": AGENTPROVIDERS,
    "ImplementationSpec": IMPLEMENTATIONSPECS,
}
SAMPLES = (
    "memory-sample.yaml",
    "agent-sample.yaml",
    "agentprovider-sample.yaml",
    "implementationspec-sample.yaml",
)
PARAMETERS = {
    "repository": "proompteng/lab",
    "issueNumber": "1234",
    "base": "main",
    "head": "codex/1234",
    "url": "https://github.com/proompteng/lab/issues/1234",
}


async def apply_samples(client: Client, ns: str) -> None:
    for sample in SAMPLES:
        for doc in yaml.safe_load_all((CHART / "examples" / sample).read_text()):
            doc["metadata"]["namespace"] = ns
            await client.create(KINDS[doc["kind"]], doc)


async def ready(client: Client, ref: ResourceRef, ns: str, name: str, reason: str) -> dict[str, Any] | None:
    try:
        obj: dict[str, Any] = await client.get(ref, name, ns)
    except NotFoundError:
        return None
    ok = cond(obj, "Ready").get("reason") == reason
    return obj if ok and obj["status"].get("observedGeneration") == obj["metadata"]["generation"] else None


def run(ns: str, name: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "agentRef": {"name": "codex-agent"},
            "implementationSpecRef": {"name": "codex-impl-sample"},
            "runtime": {"type": "job"},
            "parameters": PARAMETERS,
            **spec,
        },
    }


async def test_the_memory_sample_reconciles_and_reaches_the_runner(
    controller: ControllerProcess, client: Client, namespace: str
) -> None:
    ns = namespace
    await apply_samples(client, ns)
    memory = await eventually(
        lambda: ready(client, MEMORIES, ns, "default-memory", "SecretResolved"), what="memory ready"
    )
    assert memory["status"]["phase"] == "Ready"
    assert cond(memory, "Ready")["status"] == "True"
    assert cond(memory, "Ready")["message"] == (
        "postgres connection from secret 'memory-postgres' key 'url' (agents-postgres:5432/agents)"
    )
    assert cond(memory, "Queryable")["status"] == "True"
    assert cond(memory, "Queryable")["reason"] == "MemoryQueriesServed"
    assert cond(memory, "InvalidSpec")["status"] == "False"
    assert cond(memory, "Unreachable")["status"] == "False"
    agent = await eventually(
        lambda: ready(client, AGENTS, ns, "codex-agent", "ValidSpec"), what="agent ready"
    )
    assert cond(agent, "InvalidSpec")["status"] == "False"

    # The run lists the memory secret: run.json names the memory and the Secret is the container's env.
    await client.create(AGENTRUNS, run(ns, "with-secret", secrets=["memory-postgres"]))
    # The run names none: run.json still says which memory, but the Secret is not handed over.
    await client.create(AGENTRUNS, run(ns, "without-secret"))
    for name, env_from in (
        ("with-secret", [{"secretRef": {"name": "memory-postgres"}}]),
        ("without-secret", None),
    ):
        await wait_phase(client, ns, name, "Running")
        spec_cm = await client.get(CONFIGMAPS, f"{name}-spec", ns)
        run_json = json.loads(spec_cm["data"]["run.json"])
        assert run_json["memory"] == {
            "name": "default-memory",
            "type": "postgres",
            "connectionRef": "memory-postgres",
        }
        assert "agents:agents" not in spec_cm["data"]["run.json"]  # never the connection string itself
        job = await client.get(JOBS, f"{name}-job", ns)
        (container,) = job["spec"]["template"]["spec"]["containers"]
        assert container.get("envFrom") == env_from


async def test_memory_types_report_what_to_fix(
    controller: ControllerProcess, client: Client, namespace: str
) -> None:
    ns = namespace

    def memory(name: str, memory_type: str, secret: str, key: str | None = None) -> dict[str, Any]:
        ref = {"name": secret, **({"key": key} if key else {})}
        return {
            "metadata": {"name": name, "namespace": ns},
            "spec": {"type": memory_type, "connection": {"secretRef": ref}},
        }

    await client.create(
        SECRETS, {"metadata": {"name": "wrong", "namespace": ns}, "stringData": {"url": "mysql://h/d"}}
    )
    await client.create(
        SECRETS, {"metadata": {"name": "parts", "namespace": ns}, "stringData": {"host": "db"}}
    )
    await client.create(
        SECRETS, {"metadata": {"name": "cache", "namespace": ns}, "stringData": {"url": "rediss://r:6380"}}
    )
    await client.create(MEMORIES, memory("pg-wrong", "postgres", "wrong"))
    await client.create(MEMORIES, memory("pg-parts", "postgres", "parts"))
    await client.create(MEMORIES, memory("cache", "redis", "cache"))

    wrong = await eventually(
        lambda: ready(client, MEMORIES, ns, "pg-wrong", "InvalidConnectionString"), what="wrong"
    )
    assert cond(wrong, "InvalidSpec")["status"] == "True"
    assert "scheme 'mysql'" in cond(wrong, "InvalidSpec")["message"]
    assert wrong["status"]["phase"] == "Invalid"
    parts = await eventually(
        lambda: ready(client, MEMORIES, ns, "pg-parts", "MissingConnectionKeys"), what="parts"
    )
    assert "'host', 'database' and 'username'" in cond(parts, "Ready")["message"]
    assert cond(parts, "Queryable")["reason"] == "ConnectionUnresolved"
    cache = await eventually(lambda: ready(client, MEMORIES, ns, "cache", "SecretResolved"), what="redis")
    assert cond(cache, "Ready")["message"] == "redis connection from secret 'cache' (r:6380)"
    assert (cond(cache, "Queryable")["status"], cond(cache, "Queryable")["reason"]) == (
        "False",
        "QueryUnsupported",
    )
