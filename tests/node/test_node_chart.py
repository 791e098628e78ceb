"""The chart installed for real: jangar runs in its own pod on the node, with its ServiceAccount and the
in-cluster config (the `kubernetes` Service through kube-proxy, the database by its Service name through the
cluster DNS), and the seed's "Try it now" holds: `helm install ... --values values-local.yaml`,
`kubectl port-forward svc/agents 8080:80`, `curl /health`, `helm test`. Then the controllers in that pod run
the seed's smoke sample in real containers and record it in Postgres."""

from __future__ import annotations

import json
import re

from jangar.dev.assets import repo_root
from jangar.dev.cluster import LocalCluster
from jangar.dev.images import build_script_image
from jangar.dev.incluster import DATABASE, ChartRelease
from jangar.dev.postgres import LocalPostgres
from tests.support.waiting import eventually

EXAMPLES = repo_root() / "charts" / "agents" / "examples"
SMOKE = ("agentprovider-smoke.yaml", "agent-smoke.yaml", "implementationspec-smoke.yaml")


def _image_values(cluster: LocalCluster) -> dict[str, str]:
    values = {}
    for flag, key in (("--jangar", "image"), ("--curl", "tests.image")):
        ref, archive = build_script_image(flag)
        repository, tag = ref.rsplit(":", 1)
        cluster.import_image(archive, repository)
        values[f"{key}.repository"] = repository
        values[f"{key}.tag"] = tag
    return values


async def test_the_chart_runs_jangar_in_a_pod_and_the_seeds_try_it_now_holds(
    node_cluster: LocalCluster, node_postgres: LocalPostgres
) -> None:
    assert node_cluster.real_node is not None
    release = ChartRelease(node_cluster)
    release.expose_postgres(node_postgres, node_cluster.real_node.node_ip)
    values = repo_root() / "charts" / "agents" / "values-local.yaml"
    try:
        release.install([values], _image_values(node_cluster))

        pod = json.loads(
            release.kubectl(
                "get", "pods", "-n", "agents", "-l", "app.kubernetes.io/name=agents", "-o", "json"
            )
        )["items"][0]
        assert pod["spec"]["nodeName"] == node_cluster.node_name
        assert pod["spec"]["serviceAccountName"] == "agents-sa"
        env = {e["name"] for c in pod["spec"]["containers"] for e in c.get("env") or ()}
        assert (
            "KUBECONFIG" not in env
        )  # in-cluster config: the ServiceAccount token and the kubernetes Service

        health = json.loads(release.health())
        assert health["status"] == "ok", health
        tested = release.test()
        assert re.search(r"Phase:\s+Succeeded", tested), tested

        for sample in SMOKE:
            release.kubectl("apply", "-n", "agents", "-f", str(EXAMPLES / sample))
        release.kubectl("apply", "-n", "agents", "-f", str(EXAMPLES / "agentrun-workflow-smoke.yaml"))

        def phase() -> str:
            out = release.kubectl("get", "agentrun", "agents-workflow-smoke", "-n", "agents", "-o", "json")
            return str((json.loads(out).get("status") or {}).get("phase") or "")

        await eventually(lambda: phase() in ("Succeeded", "Failed"), timeout=240, what="the smoke run to end")
        assert phase() == "Succeeded", release.diagnose()
        log = release.kubectl(
            "logs", "-n", "agents", "-l", "agents.proompteng.ai/agent-run=agents-workflow-smoke"
        )
        assert "smoke stage" in log

        _, _, database = DATABASE

        def recorded() -> str:
            try:
                return node_postgres.psql(
                    "SELECT phase FROM agent_run_records WHERE name = 'agents-workflow-smoke'", database
                ).strip()
            except RuntimeError:
                return ""

        await eventually(lambda: recorded() == "Succeeded", timeout=60, what="the run record in Postgres")
    finally:
        release.uninstall()
