"""The Schedule runner's RBAC and settings: `runtime.scheduleServiceAccount` gets, in each watched namespace,
exactly what `jangar schedule fire` needs; `runtime.scheduleRunnerImage` reaches the controller's env."""

from __future__ import annotations

from pathlib import Path

from tests.chart.helm import render
from tests.chart.test_chart_render import allowed


def test_no_schedule_runner_grant_without_a_service_account(helm_bin: Path) -> None:
    r = render(helm_bin)
    assert not any(n.endswith("-schedule-runner") for n in r.names("Role"))


def test_schedule_runner_role_per_watched_namespace(helm_bin: Path) -> None:
    values = {
        "controller": {"namespaces": ["team-a", "team-b"]},
        "rbac": {"clusterScoped": True},
        "runtime": {"scheduleServiceAccount": "schedule-runner", "scheduleRunnerImage": "registry/jangar:1"},
    }
    r = render(helm_bin, values)
    roles = [x for x in r.all("Role") if x["metadata"]["name"].endswith("-schedule-runner")]
    # every watched namespace (the Schedule controller's are the supporting controller's, a subset)
    assert {"team-a", "team-b"} <= {x["metadata"]["namespace"] for x in roles}
    rules = roles[0]["rules"]
    assert allowed(rules, "agents.proompteng.ai", "agentruns", "create")
    assert allowed(rules, "orchestration.proompteng.ai", "orchestrationruns", "create")
    assert allowed(rules, "schedules.proompteng.ai", "schedules", "get")
    assert allowed(rules, "", "configmaps", "get") and allowed(rules, "batch", "jobs", "get")
    assert not allowed(rules, "agents.proompteng.ai", "agentruns", "delete")
    assert not allowed(rules, "", "secrets", "get")
    assert not allowed(rules, "schedules.proompteng.ai", "schedules", "update")
    bindings = [x for x in r.all("RoleBinding") if x["metadata"]["name"].endswith("-schedule-runner")]
    for b in bindings:
        (subject,) = b["subjects"]
        assert subject == {
            "kind": "ServiceAccount",
            "name": "schedule-runner",
            "namespace": b["metadata"]["namespace"],
        }
    env = r.env()
    assert env["JANGAR_SCHEDULE_SERVICE_ACCOUNT"] == "schedule-runner"
    assert env["JANGAR_SCHEDULE_RUNNER_IMAGE"] == "registry/jangar:1"
