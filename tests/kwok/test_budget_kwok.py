"""A Budget on the kwok cluster: finished runs' real Pods (requests x run time) exceed it, the next run is
held with BudgetExceeded, deleting a finished run does not give its usage back, and raising the limit lets
the held run start and finish."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from jangar.api.refs import BUDGETS
from jangar.controllers.kinds import AGENTRUNS
from jangar.dev.cluster import LocalCluster
from jangar.dev.kwok_stages import SLOW_IMAGE
from jangar.runtime import Client, NotFoundError
from tests.envtest.controllers_fixtures import (
    apply_basics,
    cond,
    eventually,
    run,
    running_controller,
    settings_for,
    wait_phase,
)


def slow_run(ns: str, name: str) -> dict[str, Any]:
    workload = {"image": SLOW_IMAGE, "resources": {"requests": {"cpu": "1", "memory": "64Mi"}}}
    return run(ns, name, budgetRef={"name": "compute"}, workload=workload)


async def test_a_budget_exceeded_by_finished_runs_holds_the_next_until_the_limit_is_raised(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns)):
        await apply_basics(client, ns)
        await client.create(
            BUDGETS, {"metadata": {"name": "compute", "namespace": ns}, "spec": {"limits": {"cpu": "1"}}}
        )
        await client.create(AGENTRUNS, slow_run(ns, "first"))
        done = await wait_phase(client, ns, "first", "Succeeded", "Failed", timeout=90)
        assert done["status"]["phase"] == "Succeeded", done["status"]

        async def exceeded() -> Any:
            obj = await client.get(BUDGETS, "compute", ns)
            return obj if (obj.get("status") or {}).get("phase") == "Exceeded" else None

        budget = await eventually(exceeded, timeout=60, what="the Budget exceeded by the finished run")
        used = Decimal(budget["status"]["used"]["cpu"])
        assert used >= 1  # 1 core for the Pod's ~2 s
        assert Decimal(budget["status"]["used"]["memory"]) >= 64 * 1024**2
        assert cond(budget, "Exceeded")["reason"] == "CpuExceeded"
        assert [e["name"] for e in budget["status"]["runs"]] == ["first"]

        await client.create(AGENTRUNS, slow_run(ns, "second"))

        async def held() -> Any:
            obj = await client.get(AGENTRUNS, "second", ns)
            return obj if cond(obj, "BudgetExceeded").get("status") == "True" else None

        second = await eventually(held, timeout=60, what="the next run held by the Budget")
        assert second["status"]["phase"] == "Pending"
        assert "budget compute cpu exceeded" in cond(second, "BudgetExceeded")["message"]
        assert not second["status"].get("jobRef")

        # deleting the finished run does not give its usage back
        await client.delete(AGENTRUNS, "first", ns)

        async def first_gone() -> bool:
            try:
                await client.get(AGENTRUNS, "first", ns)
            except NotFoundError:
                return True
            return False

        await eventually(first_gone, timeout=60, what="the first run deleted")
        budget = await client.get(BUDGETS, "compute", ns)
        assert budget["status"]["phase"] == "Exceeded"
        assert Decimal(budget["status"]["used"]["cpu"]) == used
        assert (await client.get(AGENTRUNS, "second", ns))["status"]["phase"] == "Pending"

        await client.patch(BUDGETS, "compute", {"spec": {"limits": {"cpu": "100000"}}}, namespace=ns)
        finished = await wait_phase(client, ns, "second", "Succeeded", "Failed", timeout=90)
        assert finished["status"]["phase"] == "Succeeded", finished["status"]
        assert cond(finished, "BudgetExceeded")["status"] == "False"

        async def both_counted() -> Any:
            obj = await client.get(BUDGETS, "compute", ns)
            runs = [e["name"] for e in (obj.get("status") or {}).get("runs") or ()]
            return obj if sorted(runs) == ["first", "second"] else None

        budget = await eventually(both_counted, timeout=60, what="both runs in the ledger")
        assert budget["status"]["phase"] == "Active"
        assert Decimal(budget["status"]["used"]["cpu"]) > used
