"""`agentctl workspace|artifact get|list` as processes against a real API server: the list line is name,
phase, the Ready reason and where the thing is (claim or uri); `get` prints the object as JSON; a missing
name exits 1 with the API server's message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jangar.api.refs import ARTIFACTS, WORKSPACES
from jangar.dev.cluster import LocalCluster
from jangar.runtime import Client
from tests.support.commands import run_command


async def agentctl(kubeconfig: Path, namespace: str, *args: str) -> tuple[int, str, str]:
    done = await run_command("jangar.agentctl", "--kubeconfig", str(kubeconfig), "-n", namespace, *args)
    return done.returncode, done.stdout, done.stderr


def ready(reason: str) -> dict[str, Any]:
    return {
        "type": "Ready",
        "status": "True",
        "reason": reason,
        "message": "",
        "lastTransitionTime": "2026-06-01T12:00:00Z",
    }


async def test_workspace_and_artifact_get_and_list(
    envtest_crds: LocalCluster, client: Client, namespace: str
) -> None:
    kubeconfig = envtest_crds.kubeconfig
    ws = await client.create(
        WORKSPACES, {"metadata": {"name": "shared", "namespace": namespace}, "spec": {"size": "1Gi"}}
    )
    ws["status"] = {"phase": "Ready", "claimName": "shared", "conditions": [ready("Bound")]}
    await client.update_status(WORKSPACES, ws)
    await client.create(
        WORKSPACES, {"metadata": {"name": "fresh", "namespace": namespace}, "spec": {"size": "1Gi"}}
    )
    art = await client.create(
        ARTIFACTS,
        {
            "metadata": {"name": "r1-patch", "namespace": namespace, "labels": {"run": "r1"}},
            "spec": {"uri": "pvc://shared/out.patch", "sizeBytes": 9},
        },
    )
    art["status"] = {"phase": "Ready", "uri": "pvc://shared/out.patch", "conditions": [ready("Recorded")]}
    await client.update_status(ARTIFACTS, art)
    await client.create(ARTIFACTS, {"metadata": {"name": "other", "namespace": namespace}, "spec": {}})

    code, out, err = await agentctl(kubeconfig, namespace, "workspace", "list")
    assert code == 0, err
    rows = sorted(line.split("\t") for line in out.splitlines())
    assert rows == [["fresh", "Pending", "", ""], ["shared", "Ready", "Bound", "shared"]]

    code, out, err = await agentctl(kubeconfig, namespace, "workspace", "get", "shared")
    assert code == 0, err
    got = json.loads(out)
    assert got["metadata"]["name"] == "shared" and got["status"]["claimName"] == "shared"

    code, out, err = await agentctl(kubeconfig, namespace, "artifact", "list", "-l", "run=r1")
    assert code == 0, err
    assert out.splitlines() == ["r1-patch\tReady\tRecorded\tpvc://shared/out.patch"]
    code, out, _ = await agentctl(kubeconfig, namespace, "artifact", "list")
    assert sorted(line.split("\t")[0] for line in out.splitlines()) == ["other", "r1-patch"]
    code, out, err = await agentctl(kubeconfig, namespace, "artifact", "get", "r1-patch")
    assert code == 0 and json.loads(out)["spec"]["sizeBytes"] == 9, err

    code, out, err = await agentctl(kubeconfig, namespace, "artifact", "get", "ghost")
    assert code == 1 and out == "" and "not found" in err and "ghost" in err
    code, _, err = await agentctl(kubeconfig, namespace, "workspace", "get", "ghost")
    assert code == 1 and "not found" in err
