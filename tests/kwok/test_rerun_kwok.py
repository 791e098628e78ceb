"""Reruns on the kwok cluster (issue 11): with `workflowRuntime.native.rerunOrchestration` configured, a
failed AgentRun produces exactly one OrchestrationRun per attempt. The rerun orchestration's own AgentRun
step fails too (a failing image), so the chain runs to the last attempt: attempts 1, 2 and 3, each once,
with the root run's uid in the delivery id, then nothing more."""

from __future__ import annotations

from typing import Any

from jangar.api.contract import LABEL_RERUN_KIND
from jangar.api.refs import ORCHESTRATIONRUNS, ORCHESTRATIONS
from jangar.controllers.kinds import AGENTRUNS, EVENTS
from jangar.controllers.rerun import MAX_ATTEMPTS
from jangar.dev.cluster import LocalCluster
from jangar.dev.kwok_stages import FAIL_IMAGE
from jangar.runtime import Client
from tests.envtest.controllers_fixtures import (
    apply_basics,
    eventually,
    run,
    running_controller,
    settings_for,
    wait_phase,
)

FAILING = {"workload": {"image": FAIL_IMAGE}, "runtime": {"type": "job", "config": {"backoffLimit": 0}}}


async def reruns(client: Client, ns: str) -> list[dict[str, Any]]:
    items = (await client.list(ORCHESTRATIONRUNS, ns, label_selector=f"{LABEL_RERUN_KIND}=rerun")).items
    return sorted(items, key=lambda o: str(o["spec"]["deliveryId"]))


async def test_failed_run_gets_one_orchestration_run_per_attempt(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    settings = settings_for(
        ns,
        JANGAR_CODEX_RERUN_ORCHESTRATION="codex-rerun",
        JANGAR_CODEX_RERUN_ORCHESTRATION_NAMESPACE=ns,
    )
    async with running_controller(kwok_cluster.kubeconfig, settings):
        await apply_basics(client, ns)
        step = {
            "name": "fix",
            "kind": "AgentRun",
            "agentRef": {"name": "coder"},
            "implementationSpecRef": {"name": "task"},
            "with": {"prompt": "{{parameters.prompt}}"},
            **FAILING,
        }
        await client.create(
            ORCHESTRATIONS, {"metadata": {"name": "codex-rerun", "namespace": ns}, "spec": {"steps": [step]}}
        )
        root = await client.create(AGENTRUNS, run(ns, "boom", **FAILING))
        await wait_phase(client, ns, "boom", "Failed", timeout=60)

        async def all_attempts() -> list[dict[str, Any]] | None:
            found = await reruns(client, ns)
            if len(found) < MAX_ATTEMPTS:
                return None
            for orun in found:
                if (orun.get("status") or {}).get("phase") not in ("Succeeded", "Failed", "Cancelled"):
                    return None
            return found

        found = await eventually(all_attempts, timeout=240, interval=1.0, what="three finished reruns")
        uid = root["metadata"]["uid"]
        assert [o["spec"]["deliveryId"] for o in found] == [
            f"jangar-{uid}-attempt-{n}" for n in range(1, MAX_ATTEMPTS + 1)
        ]
        assert [o["spec"]["parameters"]["attempt"] for o in found] == ["1", "2", "3"]
        assert {o["spec"]["parameters"]["parentRunUid"] for o in found} == {uid}
        assert {o["spec"]["orchestrationRef"]["name"] for o in found} == {"codex-rerun"}

        # the last attempt's child failed: its pass decides "exhausted" (an Event) instead of an attempt 4
        async def exhausted() -> bool:
            events = (await client.list(EVENTS, ns)).items
            return any(e.get("reason") == "RerunsExhausted" for e in events)

        await eventually(exhausted, timeout=60, interval=0.5, what="RerunsExhausted event")
        assert len(await reruns(client, ns)) == MAX_ATTEMPTS
        submitted = [e for e in (await client.list(EVENTS, ns)).items if e.get("reason") == "RerunSubmitted"]
        assert sum(int(e.get("count") or 1) for e in submitted) == MAX_ATTEMPTS
