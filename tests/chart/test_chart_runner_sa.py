"""The runner ServiceAccount in every watched namespace (issue 12).

An explicit namespace list: the chart renders the ServiceAccount in each. `*`: the chart cannot know the
namespaces, so the controller creates it in a run's namespace before the Job
(`JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT_CREATE`, `jangar/controllers/runner_sa.py`) and may: its rules allow
creating ServiceAccounts. Every mode may list and watch them (the controller checks a run's ServiceAccount).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jangar.settings import Settings
from tests.chart.helm import render
from tests.chart.test_chart_render import allowed


def controller_rules(r: Any) -> list[dict[str, Any]]:
    docs = r.all("ClusterRole") + r.all("Role")
    rules: list[dict[str, Any]] = []
    for d in docs:
        if not d["metadata"]["name"].endswith("-runner"):
            rules += d["rules"]
    return rules


def test_wildcard_namespaces_the_controller_creates_the_runner_service_account(helm_bin: Path) -> None:
    values = {
        "rbac": {"clusterScoped": True},
        "controllers": {"enabled": True},
        "controller": {"namespaces": ["*"]},
        "runnerServiceAccount": {"create": True, "annotations": {"iam.example/role": "runner"}},
    }
    r = render(helm_bin, values)
    env = r.env("agents-controllers")
    assert env["JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT"] == "agents-runner"
    assert env["JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT_CREATE"] == "true"
    settings = Settings.from_env({k: v for k, v in env.items() if isinstance(v, str)})
    assert settings.runner_service_account.create
    assert settings.runner_service_account.annotations == {"iam.example/role": "runner"}
    rules = controller_rules(r)
    for verb in ("get", "list", "watch", "create"):
        assert allowed(rules, "", "serviceaccounts", verb), verb
    assert not allowed(rules, "", "serviceaccounts", "delete")


def test_a_namespace_list_renders_the_runner_service_account_in_each(helm_bin: Path) -> None:
    values = {
        "rbac": {"clusterScoped": True},
        "controller": {"namespaces": ["team-a", "team-b"]},
        "runnerServiceAccount": {"create": True},
    }
    r = render(helm_bin, values)
    sas = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in r.all("ServiceAccount")}
    assert {("agents", "agents-runner"), ("team-a", "agents-runner"), ("team-b", "agents-runner")} <= sas


def test_without_creation_the_controller_only_reads_service_accounts(helm_bin: Path) -> None:
    r = render(helm_bin, {"controller": {"defaultWorkload": {"serviceAccountName": "mine"}}})
    env = r.env()
    assert env["JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT"] == "mine"
    assert "JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT_CREATE" not in env
    rules = controller_rules(r)
    assert allowed(rules, "", "serviceaccounts", "watch")
    assert not allowed(rules, "", "serviceaccounts", "create")
    # a default workload SA other than the chart's runner SA is never created by the controller
    r = render(
        helm_bin,
        {
            "runnerServiceAccount": {"create": True},
            "controller": {"defaultWorkload": {"serviceAccountName": "x"}},
        },
    )
    assert "JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT_CREATE" not in r.env()


def test_wildcard_runner_rbac_the_controller_binds_the_runner_cluster_role(helm_bin: Path) -> None:
    """Under `*` the chart binds the runner ClusterRole only where it knows the SA; the controller binds it
    next to each runner SA it creates, allowed to bind that one ClusterRole and nothing else."""
    values = {
        "rbac": {"clusterScoped": True},
        "controller": {"namespaces": ["*"]},
        "runnerServiceAccount": {"create": True, "rbac": {"create": True}},
    }
    r = render(helm_bin, values)
    assert r.env()["JANGAR_AGENT_RUNNER_CLUSTER_ROLE"] == "agents-agents-runner"
    assert r.has("ClusterRole", "agents-agents-runner")
    binder = r.get("ClusterRole", "agents-agents-runner-binder")
    assert allowed(binder["rules"], "rbac.authorization.k8s.io", "rolebindings", "create")
    bind = next(rule for rule in binder["rules"] if "bind" in rule["verbs"])
    assert bind["resources"] == ["clusterroles"] and bind["resourceNames"] == ["agents-agents-runner"]
    binding = r.get("ClusterRoleBinding", "agents-agents-runner-binder")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "agents-sa", "namespace": "agents"}]
    # an explicit namespace list: the chart binds it everywhere itself, so the controller does not
    listed = render(helm_bin, {**values, "controller": {"namespaces": ["team-a", "team-b"]}})
    assert "JANGAR_AGENT_RUNNER_CLUSTER_ROLE" not in listed.env()
    assert not listed.has("ClusterRole", "agents-agents-runner-binder")
