"""The runner ServiceAccount on a real API server (issue 12).

* `controller.namespaces=["*"]` with `runnerServiceAccount.create=true`: the controller creates the runner
  ServiceAccount in a namespace the chart knew nothing about, before the run's Job, which uses it;
* a run whose ServiceAccount is missing (and not jangar's to create) is Pending with MissingServiceAccount
  within seconds, not failed 10 minutes later as PodsNotCreated; creating the ServiceAccount starts it.
"""

from __future__ import annotations

from typing import Any

from jangar.controllers.kinds import AGENTRUNS, JOBS, ROLEBINDINGS, SERVICEACCOUNTS
from jangar.controllers.runner_sa import LABEL_RUNNER_SERVICE_ACCOUNT
from jangar.dev.cluster import LocalCluster
from jangar.runtime import Client, NotFoundError
from tests.envtest.controllers_fixtures import (
    apply_basics,
    cond,
    eventually,
    get_run,
    run,
    running_controller,
    settings_for,
    wait_phase,
)


async def test_wildcard_namespaces_get_the_runner_service_account_before_the_job(
    envtest: LocalCluster, client: Client, namespace: str
) -> None:
    settings = settings_for(
        "*",
        JANGAR_RBAC_CLUSTER_SCOPED="true",
        JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT="agents-runner",
        JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT_CREATE="true",
        JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT_ANNOTATIONS='{"iam.example/role": "runner"}',
        JANGAR_AGENT_RUNNER_CLUSTER_ROLE="agents-agents-runner",
    )
    async with running_controller(envtest.kubeconfig, settings):
        await apply_basics(client, namespace)
        await client.create(AGENTRUNS, run(namespace, "sa1"))
        job = await eventually(
            lambda: client.get(JOBS, "sa1-job", namespace), timeout=60, ignoring=(NotFoundError,), what="Job"
        )
        assert job["spec"]["template"]["spec"]["serviceAccountName"] == "agents-runner"
        sa = await client.get(SERVICEACCOUNTS, "agents-runner", namespace)
        assert sa["metadata"]["labels"][LABEL_RUNNER_SERVICE_ACCOUNT] == "true"
        assert sa["metadata"]["annotations"]["iam.example/role"] == "runner"
        assert not sa["metadata"].get("ownerReferences")  # shared by the namespace's runs
        binding = await client.get(ROLEBINDINGS, "agents-runner", namespace)
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "agents-agents-runner",
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "agents-runner", "namespace": namespace}
        ]
        # A second run reuses it (no error, no second object).
        await client.create(AGENTRUNS, run(namespace, "sa2"))
        await eventually(
            lambda: client.get(JOBS, "sa2-job", namespace),
            timeout=60,
            ignoring=(NotFoundError,),
            what="Job 2",
        )
        sas = [s["metadata"]["name"] for s in (await client.list(SERVICEACCOUNTS, namespace)).items]
        assert sas.count("agents-runner") == 1


async def test_a_missing_service_account_is_reported_at_once_and_the_run_starts_once_it_exists(
    envtest: LocalCluster, client: Client, namespace: str
) -> None:
    settings = settings_for(namespace, JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT="agents-runner")
    async with running_controller(envtest.kubeconfig, settings):
        await apply_basics(client, namespace)
        await client.create(AGENTRUNS, run(namespace, "nosa"))

        async def reported() -> dict[str, Any] | None:
            obj = await get_run(client, namespace, "nosa")
            if not obj.get("status"):
                return None
            c = (
                cond(obj, "InvalidSpec")
                if any(x.get("type") == "InvalidSpec" for x in obj["status"].get("conditions") or ())
                else {}
            )
            return obj if c.get("reason") == "MissingServiceAccount" else None

        obj = await eventually(reported, timeout=30, what="MissingServiceAccount on the run")
        assert obj["status"]["phase"] == "Pending"
        assert "agents-runner" in cond(obj, "InvalidSpec")["message"]
        assert not (await client.list(JOBS, namespace)).items
        await client.create(SERVICEACCOUNTS, {"metadata": {"name": "agents-runner", "namespace": namespace}})
        running = await wait_phase(client, namespace, "nosa", "Running", timeout=60)
        assert cond(running, "InvalidSpec")["status"] == "False"
        job = await client.get(JOBS, "nosa-job", namespace)
        assert job["spec"]["template"]["spec"]["serviceAccountName"] == "agents-runner"
