"""AgentProvider 0.9.29 on the kwok cluster (kube-controller-manager runs the Jobs, kwok the Pods):

* a provider's `workload` defaults, `secretEnv`, `adapter` and projected token reach the Job, and a run's own
  workload still wins over them;
* a run failing with a capacity message marks the provider (Blocked under policy `block`, Degraded under
  `degrade`), the next run is held Pending with Blocked=True, and it runs once the provider recovers: by a spec
  change, or when the cool-down ends.
"""

from __future__ import annotations

from typing import Any

from jangar.controllers.kinds import AGENTPROVIDERS, AGENTRUNS, AGENTS, IMPLEMENTATIONSPECS, JOBS
from jangar.dev.cluster import LocalCluster
from jangar.dev.kwok_stages import FAIL_MESSAGE_IMAGE, TERMINATION_MESSAGE_ENV
from jangar.runtime import Client
from jangar.runtime.resources import SERVICE_ACCOUNTS
from jangar.settings import ControllerTuning
from tests.envtest.controllers_fixtures import (
    agent,
    cond,
    eventually,
    impl,
    provider,
    run,
    running_controller,
    settings_for,
    wait_phase,
)

PROVIDER_IMAGE = "ghcr.io/proompteng/agents-codex-runner:0.9.29"
DEFAULT_RESOURCES = '{"requests": {"cpu": "50m"}, "limits": {"memory": "128Mi"}}'
CAPACITY_MESSAGE = "stream error: You've hit your usage limit. Try again in 3 hours."
NO_RETRY = {"type": "job", "config": {"backoffLimit": 0}}


async def _basics(client: Client, ns: str, **provider_spec: Any) -> None:
    await client.create(AGENTPROVIDERS, provider(ns, **provider_spec))
    await client.create(AGENTS, agent(ns))
    await client.create(IMPLEMENTATIONSPECS, impl(ns))


async def _job_of(client: Client, ns: str, name: str) -> dict[str, Any]:
    finished = await wait_phase(client, ns, name, "Succeeded", "Failed", timeout=90)
    assert finished["status"]["phase"] == "Succeeded", finished["status"]
    job: dict[str, Any] = await client.get(JOBS, finished["status"]["jobRef"]["name"], ns)
    return job


async def _provider_phase(client: Client, ns: str, *phases: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        obj: dict[str, Any] = await client.get(AGENTPROVIDERS, "codex", ns)
        return obj if (obj.get("status") or {}).get("phase") in phases else None

    found: dict[str, Any] = await eventually(check, timeout=60, what=f"provider codex in {phases}")
    return found


async def _blocked(client: Client, ns: str, name: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        obj: dict[str, Any] = await client.get(AGENTRUNS, name, ns)
        return obj if cond(obj, "Blocked").get("status") == "True" else None

    found: dict[str, Any] = await eventually(check, timeout=60, what=f"{name} held Blocked")
    return found


async def test_provider_workload_defaults_reach_the_job_and_the_run_still_wins(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    settings = settings_for(ns, JANGAR_AGENT_RUNNER_RESOURCES=DEFAULT_RESOURCES)
    async with running_controller(kwok_cluster.kubeconfig, settings):
        await client.create(SERVICE_ACCOUNTS, {"metadata": {"name": "codex-runner", "namespace": ns}})
        await _basics(
            client,
            ns,
            adapter="codex-app-server",
            secretEnv=[{"name": "OPENAI_API_KEY", "secretKeyRef": {"name": "openai", "key": "api-key"}}],
            workload={
                "image": PROVIDER_IMAGE,
                "resources": {"requests": {"cpu": "250m"}},
                "serviceAccountName": "codex-runner",
                "serviceAccountToken": {"audience": "vault", "path": "/var/run/secrets/agents/token"},
            },
        )
        await client.create(AGENTRUNS, run(ns, "defaults"))
        job = await _job_of(client, ns, "defaults")
        pod = job["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["image"] == PROVIDER_IMAGE
        assert container["resources"] == {"requests": {"cpu": "250m"}}
        assert pod["serviceAccountName"] == "codex-runner"
        env = {e["name"]: e for e in container["env"]}
        assert env["AGENT_PROVIDER_ADAPTER"]["value"] == "codex-app-server"
        assert env["OPENAI_API_KEY"] == {
            "name": "OPENAI_API_KEY",
            "valueFrom": {"secretKeyRef": {"name": "openai", "key": "api-key"}},
        }
        token = next(v for v in pod["volumes"] if "projected" in v)
        assert token["projected"]["sources"][0]["serviceAccountToken"]["audience"] == "vault"
        assert {"name": token["name"], "mountPath": "/var/run/secrets/agents", "readOnly": True} in container[
            "volumeMounts"
        ]

        own = {"image": "ghcr.io/acme/own:1", "resources": {"limits": {"cpu": "1"}}}
        await client.create(AGENTRUNS, run(ns, "own", workload=own))
        (container,) = (await _job_of(client, ns, "own"))["spec"]["template"]["spec"]["containers"]
        assert (container["image"], container["resources"]) == (
            "ghcr.io/acme/own:1",
            {"limits": {"cpu": "1"}},
        )

        # a provider without resources: the controller default (JANGAR_AGENT_RUNNER_RESOURCES)
        await client.patch(AGENTPROVIDERS, "codex", {"spec": {"workload": {"resources": None}}}, namespace=ns)
        await client.create(AGENTRUNS, run(ns, "fallback"))
        (container,) = (await _job_of(client, ns, "fallback"))["spec"]["template"]["spec"]["containers"]
        assert container["resources"] == {"requests": {"cpu": "50m"}, "limits": {"memory": "128Mi"}}

        ready = await _provider_phase(client, ns, "Ready")
        assert ready["status"]["health"]["state"] == "Healthy"
        assert cond(ready, "Warning")["status"] == "False"


async def test_a_capacity_failure_blocks_the_provider_and_holds_the_next_run_until_the_spec_changes(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns)):
        await _basics(
            client,
            ns,
            health={"capacityFailurePolicy": "block"},
            envTemplate={TERMINATION_MESSAGE_ENV: CAPACITY_MESSAGE},
            workload={"image": FAIL_MESSAGE_IMAGE},
        )
        await client.create(AGENTRUNS, run(ns, "exhausted", runtime=NO_RETRY))
        failed = await wait_phase(client, ns, "exhausted", "Failed", "Succeeded", timeout=90)
        assert failed["status"]["phase"] == "Failed", failed["status"]
        assert "usage limit" in failed["status"]["runner"]["message"]

        blocked = await _provider_phase(client, ns, "Blocked")
        assert cond(blocked, "Ready")["status"] == "False"
        assert cond(blocked, "Ready")["reason"] == "ProviderCapacityExhausted"
        assert blocked["status"]["health"]["failedRun"] == "exhausted"

        await client.create(AGENTRUNS, run(ns, "next", runtime=NO_RETRY))
        held = await _blocked(client, ns, "next")
        assert held["status"]["phase"] == "Pending" and not held["status"].get("jobRef")
        blocked_cond = cond(held, "Blocked")
        assert blocked_cond["reason"] == "ProviderCapacityExhausted"
        assert "agent provider codex is unhealthy" in blocked_cond["message"]
        assert "usage limit" in blocked_cond["message"]

        # the user moves the provider to a working image: the spec change clears the hold
        await client.patch(
            AGENTPROVIDERS, "codex", {"spec": {"workload": {"image": PROVIDER_IMAGE}}}, namespace=ns
        )
        done = await wait_phase(client, ns, "next", "Succeeded", "Failed", timeout=90)
        assert done["status"]["phase"] == "Succeeded", done["status"]
        assert cond(done, "Blocked")["status"] == "False"
        recovered = await _provider_phase(client, ns, "Ready")
        assert recovered["status"]["health"]["state"] == "Healthy"


async def test_under_degrade_the_provider_stays_ready_and_the_cooldown_releases_the_run(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    # the fixture's tuning replaces the settings' (so the cool-down is given there, not as an env)
    tuning = ControllerTuning(
        agentrun_workers=4, reference_grace_seconds=5.0, provider_health_cooldown_seconds=15
    )
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns), tuning):
        await _basics(
            client,
            ns,
            envTemplate={TERMINATION_MESSAGE_ENV: "429 Too Many Requests: rate limit reached"},
            workload={"image": FAIL_MESSAGE_IMAGE},
            health={},  # opted in; the policy defaults to degrade
        )
        await client.create(AGENTRUNS, run(ns, "limited", runtime=NO_RETRY))
        assert (await wait_phase(client, ns, "limited", "Failed", "Succeeded", timeout=90))["status"][
            "phase"
        ] == "Failed"
        degraded = await _provider_phase(client, ns, "Degraded")
        assert cond(degraded, "Ready")["status"] == "True"
        assert cond(degraded, "Degraded")["status"] == "True"

        # the next run brings its own image (the run wins over the provider), but still waits: it is held
        await client.create(AGENTRUNS, run(ns, "after", runtime=NO_RETRY, workload={"image": PROVIDER_IMAGE}))
        held = await _blocked(client, ns, "after")
        assert cond(held, "Blocked")["reason"] == "ProviderCapacityExhausted"
        done = await wait_phase(client, ns, "after", "Succeeded", "Failed", timeout=90)
        assert done["status"]["phase"] == "Succeeded", done["status"]
        await _provider_phase(client, ns, "Ready")
