"""A `workflow` AgentRun on the kwok cluster records each step's artifacts, like a single-Job run: the steps'
Pods (`OUTPUTS_IMAGE`) terminate with the report the provider's `envTemplate` rendered from each step's
parameters, so every step reports its own file. The run ends with `status.artifacts` named
`<step>/<artifact>` and one Artifact per step, owned by the run, which the Artifact controller records."""

from __future__ import annotations

from typing import Any

from jangar.api.contract import ANNOTATION_ARTIFACT_NAME, ANNOTATION_ARTIFACT_STEP
from jangar.api.refs import ARTIFACTS
from jangar.controllers.kinds import AGENTPROVIDERS, AGENTRUNS, AGENTS
from jangar.dev.cluster import LocalCluster
from jangar.dev.kwok_stages import OUTPUTS_IMAGE, TERMINATION_MESSAGE_ENV
from jangar.runtime import Client
from tests.envtest.controllers_fixtures import (
    apply_basics,
    cond,
    eventually,
    run,
    running_controller,
    settings_for,
    wait_phase,
)

DIGEST = "d" * 64
REPORT = (
    '{"outputs": {"step": "{{ parameters.file }}"}, "artifacts": [{"name": "{{ parameters.file }}", '
    '"path": "/tmp/{{ parameters.file }}", "present": true, "size": 12, "sha256": "' + DIGEST + '"}]}'
)


async def test_each_workflow_step_records_its_artifacts(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns)):
        await apply_basics(client, ns)
        await client.create(
            AGENTPROVIDERS,
            {
                "metadata": {"name": "reporter", "namespace": ns},
                "spec": {
                    "binary": "/usr/local/bin/report",
                    "argsTemplate": ["{{ parameters.prompt }}"],
                    "envTemplate": {TERMINATION_MESSAGE_ENV: REPORT},
                    "outputArtifacts": [{"name": "file", "path": "/tmp/file"}],
                },
            },
        )
        await client.create(
            AGENTS,
            {
                "metadata": {"name": "reporter", "namespace": ns},
                "spec": {"providerRef": {"name": "reporter"}},
            },
        )
        steps = [
            {"name": "plan", "parameters": {"file": "plan.md"}},
            {"name": "build", "parameters": {"file": "out.patch"}},
        ]
        created = await client.create(
            AGENTRUNS,
            run(
                ns,
                "wf",
                agent_name="reporter",
                runtime={"type": "workflow"},
                workflow={"steps": steps},
                workload={"image": OUTPUTS_IMAGE},
            ),
        )
        done = await wait_phase(client, ns, "wf", "Succeeded", "Failed", timeout=120)
        assert done["status"]["phase"] == "Succeeded", done["status"]
        entries = done["status"]["artifacts"]
        assert [e["name"] for e in entries] == ["plan/plan.md", "build/out.patch"]
        assert all(e["present"] and e["size"] == 12 and e["sha256"] == DIGEST for e in entries)
        assert cond(done, "ArtifactsTruncated")["reason"] == "AllRecorded"

        async def recorded() -> list[dict[str, Any]] | None:
            items = (await client.list(ARTIFACTS, ns)).items
            ready = [a for a in items if (a.get("status") or {}).get("phase") == "Ready"]
            return sorted(ready, key=lambda a: str(a["metadata"]["name"])) if len(ready) == 2 else None

        artifacts = await eventually(recorded, timeout=60, what="two recorded Artifacts")
        assert [a["metadata"]["name"] for a in artifacts] == ["wf-build-out-patch", "wf-plan-plan-md"]
        for artifact, step, file in ((artifacts[0], "build", "out.patch"), (artifacts[1], "plan", "plan.md")):
            meta = artifact["metadata"]
            assert meta["annotations"][ANNOTATION_ARTIFACT_STEP] == step
            assert meta["annotations"][ANNOTATION_ARTIFACT_NAME] == file
            (owner,) = meta["ownerReferences"]
            assert (owner["kind"], owner["uid"], owner["controller"]) == (
                "AgentRun",
                created["metadata"]["uid"],
                True,
            )
            assert artifact["status"]["uri"] == f"/tmp/{file}"  # a pod path: gone with the pod, and said so
            assert (
                artifact["status"]["checksum"] == f"sha256:{DIGEST}" and artifact["status"]["sizeBytes"] == 12
            )
