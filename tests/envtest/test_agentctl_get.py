"""`agentctl get KIND [NAME]` as a process against a real API server: every one of the 19 kinds lists, the
short table comes from the printer columns, -o json|yaml|name|wide, -l, -A, and the exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from jangar.api.refs import MEMORIES, ref_for
from jangar.api.registry import KINDS
from jangar.controllers.kinds import AGENTRUNS
from jangar.dev.cluster import LocalCluster
from jangar.runtime import Client
from tests.envtest.controllers_fixtures import run
from tests.support.commands import run_command


async def agentctl(kubeconfig: Path, namespace: str, *args: str) -> tuple[int, str, str]:
    done = await run_command(
        "jangar.agentctl", "--kubeconfig", str(kubeconfig), "-n", namespace, "get", *args
    )
    return done.returncode, done.stdout, done.stderr


def memory(name: str, memory_type: str, labels: dict[str, str] | None = None) -> dict[str, object]:
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"type": memory_type, "connection": {"secretRef": {"name": "s"}}},
    }


async def test_get_memories_table_json_yaml_name_and_selector(
    envtest: LocalCluster, client: Client, namespace: str
) -> None:
    kubeconfig = envtest.kubeconfig
    await client.create(MEMORIES, memory("pg", "postgres", {"tier": "db"}), namespace=namespace)
    await client.create(MEMORIES, memory("cache", "redis"), namespace=namespace)
    # no controller runs here: set a status the way the Memory controller would
    await client.patch_status(
        MEMORIES,
        "pg",
        {
            "status": {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "SecretResolved",
                        "message": "postgres connection",
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    }
                ]
            }
        },
        namespace=namespace,
    )

    code, out, err = await agentctl(kubeconfig, namespace, "memories")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "READY", "TYPE", "DEFAULT", "REASON", "AGE"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["cache", "<none>", "redis"],
        ["pg", "True", "postgres"],
    ]
    assert lines[2].split()[4] == "SecretResolved"

    code, out, _ = await agentctl(kubeconfig, namespace, "mem", "pg", "-o", "wide")
    assert (
        code == 0
        and out.splitlines()[0].split()[-1] == "MESSAGE"
        and out.rstrip().endswith("postgres connection")
    )

    code, out, _ = await agentctl(kubeconfig, namespace, "Memory", "pg", "-o", "json")
    obj = json.loads(out)
    assert (code, obj["kind"], obj["metadata"]["name"], obj["spec"]["type"]) == (
        0,
        "Memory",
        "pg",
        "postgres",
    )
    assert "managedFields" not in obj["metadata"]

    code, out, _ = await agentctl(kubeconfig, namespace, "memory", "-l", "tier=db", "-o", "yaml")
    doc = yaml.safe_load(out)
    assert (code, doc["kind"], [i["metadata"]["name"] for i in doc["items"]]) == (0, "List", ["pg"])

    code, out, _ = await agentctl(kubeconfig, namespace, "mem", "-o", "name")
    assert (code, out.split()) == (
        0,
        ["memories.agents.proompteng.ai/cache", "memories.agents.proompteng.ai/pg"],
    )

    # kubectl's order works too: `get KIND -n NS`
    done = await run_command(
        "jangar.agentctl", "--kubeconfig", str(kubeconfig), "get", "mem", "pg", "-n", namespace
    )
    assert done.returncode == 0 and "pg" in done.stdout

    code, out, _ = await agentctl(kubeconfig, "default", "mem", "-A")
    rows = [line.split()[:2] for line in out.splitlines()[1:]]
    assert code == 0 and [namespace, "pg"] in rows and out.splitlines()[0].split()[0] == "NAMESPACE"


async def test_every_kind_lists_and_errors_exit_nonzero(
    envtest: LocalCluster, client: Client, namespace: str
) -> None:
    kubeconfig = envtest.kubeconfig
    await client.create(AGENTRUNS, run(namespace, "r1"))
    for info in KINDS:
        code, out, err = await agentctl(
            kubeconfig, namespace, info.short_names[0] if info.short_names else info.plural
        )
        assert code == 0, (info.kind, err)
        if info.kind == "AgentRun":
            assert out.splitlines()[1].split()[0] == "r1"
        else:
            assert out == "" and f"No {info.plural} found" in err, info.kind
        assert ref_for(info.kind).plural == info.plural

    code, _, err = await agentctl(kubeconfig, namespace, "ar", "ghost")
    assert code == 1 and 'agentruns.agents.proompteng.ai "ghost" not found' in err
    code, out, err = await agentctl(kubeconfig, namespace, "ar", "r1", "ghost")
    assert code == 1 and out.splitlines()[1].split()[0] == "r1" and "ghost" in err
    code, _, err = await agentctl(kubeconfig, namespace, "pods")
    assert code == 2 and "unknown kind 'pods'" in err
    code, out, _ = await agentctl(kubeconfig, namespace, "kinds")
    assert code == 0 and len(out.splitlines()) == 1 + len(KINDS)
