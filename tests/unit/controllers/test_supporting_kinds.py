"""ApprovalPolicy, Signal and SignalDelivery checks, their mappers, and the Budget reconciler, over a
`FakeCache` (indexes as installed by the controller)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from jangar.api.contract import LABEL_APPROVAL_DECISION
from jangar.api.refs import APPROVALPOLICIES, BUDGETS, SIGNALDELIVERIES, SIGNALS
from jangar.conditions import format_time
from jangar.controllers import indexes as ix
from jangar.controllers.budget import USAGE_REFRESH_SECONDS, BudgetReconciler, budget_of_run, counted_runs
from jangar.controllers.budget_hold import install_budget_indexes
from jangar.controllers.kinds import AGENTRUNS, AGENTS, JOBS, PODS
from jangar.controllers.signals import (
    APPROVAL_POLICY,
    SIGNAL,
    approval_policy_problems,
    check_approval_policy,
    check_signal,
    install_signal_indexes,
    make_check_signal_delivery,
    target_of_delivery,
    undelivered_for,
)
from jangar.controllers.supporting import CheckEnv
from jangar.runtime import Client, Request, ResourceRef
from jangar.runtime.testing import FakeCache, FakeEventRecorder
from jangar.settings import Settings

NS = "agents"
NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds_ago: float) -> str:
    return format_time(NOW - timedelta(seconds=seconds_ago))


def cache() -> FakeCache:
    c = FakeCache(SIGNALS, SIGNALDELIVERIES, APPROVALPOLICIES, BUDGETS, AGENTRUNS, AGENTS, JOBS, PODS)
    install_signal_indexes(c)  # type: ignore[arg-type]
    install_budget_indexes(c)  # type: ignore[arg-type]
    ix.install_indexes(c)  # type: ignore[arg-type]
    return c


def env(c: FakeCache) -> CheckEnv:
    return CheckEnv(settings=Settings.from_env({}), client=cast(Client, None), cache=c)


def obj(name: str, spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": NS, **meta}, "spec": spec or {}}


def delivery(
    name: str, signal: str | None, *, decision: str | None = None, created: float = 10, **spec: Any
) -> dict[str, Any]:
    labels = {LABEL_APPROVAL_DECISION: decision} if decision is not None else {}
    body = {"signalRef": {"name": signal}} if signal else {}
    return obj(name, body | spec, labels=labels, creationTimestamp=at(created))


# -- ApprovalPolicy ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "reasons"),
    [
        ({}, []),
        ({"mode": "manual", "defaultDecision": "deny", "subjects": [{"kind": "Group", "name": "ops"}]}, []),
        ({"mode": "Auto", "defaultDecision": "approve", "timeoutSeconds": 0}, []),
        ({"mode": "sometimes"}, ["InvalidMode"]),
        ({"defaultDecision": "maybe"}, ["InvalidDefaultDecision"]),
        ({"mode": "auto"}, ["MissingDefaultDecision"]),
        ({"mode": "auto", "defaultDecision": "none"}, ["MissingDefaultDecision"]),
        ({"subjects": [{"kind": "Orchestration", "name": "x"}]}, ["InvalidSubject"]),
        ({"subjects": [{"kind": "User", "name": ""}, {"kind": "Bot"}]}, ["InvalidSubject"] * 3),
        ({"subjects": "alice"}, ["InvalidSubject"]),
        ({"timeoutSeconds": -1}, ["InvalidTimeout"]),
        ({"timeoutSeconds": "1h"}, ["InvalidTimeout"]),
        ({"timeoutSeconds": True}, ["InvalidTimeout"]),
        ({"mode": 3, "timeoutSeconds": 1.5}, ["InvalidMode", "InvalidTimeout"]),
    ],
)
def test_approval_policy_validation(spec: dict[str, Any], reasons: list[str]) -> None:
    assert [r for r, _ in approval_policy_problems(spec)] == reasons


async def test_a_valid_policy_is_active_with_the_newest_decision_time() -> None:
    c = cache()
    c.add(SIGNALDELIVERIES, delivery("d1", "gate", decision="approved", created=300))
    c.add(SIGNALDELIVERIES, delivery("d2", "gate", decision="rejected", created=60))
    c.add(SIGNALDELIVERIES, delivery("d3", "gate", decision="maybe", created=5))  # not a valid decision
    c.add(SIGNALDELIVERIES, delivery("d4", "gate", created=1))  # a delivery on a Signal named gate
    c.add(SIGNALDELIVERIES, delivery("d5", "other", decision="approved", created=2))
    verdict = await check_approval_policy(obj("gate", {"mode": "manual"}), env(c))
    assert (verdict.ready, verdict.phase, verdict.reason) == (True, "Active", "Active")
    assert verdict.fields["lastDecisionAt"] == at(60)


async def test_an_invalid_policy_names_every_problem_and_keeps_its_decision_time() -> None:
    policy = obj("gate", {"mode": "x", "defaultDecision": "y"})
    policy["status"] = {"lastDecisionAt": at(1000), "phase": "Active"}
    verdict = await check_approval_policy(policy, env(cache()))
    assert verdict.invalid and verdict.reason == "InvalidMode"
    assert "spec.mode" in verdict.message and "spec.defaultDecision" in verdict.message
    assert verdict.fields["lastDecisionAt"] == at(1000)


# -- Signal -----------------------------------------------------------------------------------------


async def test_a_signal_is_active_with_its_last_delivery_time_which_never_moves_back() -> None:
    c = cache()
    c.add(SIGNALDELIVERIES, delivery("a", "human", created=100), delivery("b", "human", created=20))
    c.add(SIGNALDELIVERIES, delivery("c", "human", decision="approved", created=1))  # to a policy
    signal = obj("human", {"channel": "slack"})
    verdict = await check_signal(signal, env(c))
    assert (verdict.ready, verdict.phase) == (True, "Active")
    assert verdict.fields["lastDeliveryAt"] == at(20)
    c.delete(SIGNALDELIVERIES, "b", NS)
    signal["status"] = {"lastDeliveryAt": at(20)}
    assert (await check_signal(signal, env(c))).fields["lastDeliveryAt"] == at(20)


async def test_a_signal_without_deliveries_has_no_delivery_time_and_a_blank_channel_is_invalid() -> None:
    verdict = await check_signal(obj("quiet"), env(cache()))
    assert verdict.ready and verdict.fields["lastDeliveryAt"] is None
    bad = await check_signal(obj("bad", {"channel": " "}), env(cache()))
    assert bad.invalid and bad.reason == "InvalidChannel"


# -- SignalDelivery ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("d", "reason", "phase"),
    [
        (delivery("d", None), "InvalidSpec", None),
        (delivery("d", "gate", decision="maybe"), "InvalidDecision", None),
        (
            delivery("d", "gate", decision="approved", payload={"decision": "rejected"}),
            "InvalidDecision",
            None,
        ),
        (delivery("d", "missing"), "SignalMissing", "Pending"),
        (delivery("d", "missing", decision="approved"), "ApprovalPolicyMissing", "Pending"),
        (delivery("d", "human"), "Delivered", "Delivered"),
        (
            delivery("d", "gate", decision="rejected", payload={"decision": "rejected"}),
            "Delivered",
            "Delivered",
        ),
    ],
)
async def test_delivery_validation(d: dict[str, Any], reason: str, phase: str | None) -> None:
    c = cache()
    c.add(SIGNALS, obj("human"))
    c.add(APPROVALPOLICIES, obj("gate"))
    verdict = await make_check_signal_delivery(lambda: NOW)(d, env(c))
    assert verdict.reason == reason
    assert verdict.phase == phase
    assert verdict.ready == (reason == "Delivered")
    if reason == "Delivered":
        assert verdict.fields["deliveredAt"] == format_time(NOW)
    if reason in ("SignalMissing", "ApprovalPolicyMissing"):
        assert "missing" in verdict.message and not verdict.invalid


async def test_delivered_at_is_set_once_and_a_delivery_stays_delivered() -> None:
    d = delivery("d", "human")
    d["status"] = {"phase": "Delivered", "deliveredAt": at(500)}
    verdict = await make_check_signal_delivery(lambda: NOW)(d, env(cache()))  # the Signal is gone
    assert (verdict.ready, verdict.phase, verdict.fields["deliveredAt"]) == (True, "Delivered", at(500))


def test_mappers_route_deliveries_to_their_target_and_targets_to_waiting_deliveries() -> None:
    c = cache()
    waiting = delivery("w", "human")
    done = delivery("done", "human")
    done["status"] = {"deliveredAt": at(1)}
    decision = delivery("dec", "human", decision="approved")
    c.add(SIGNALDELIVERIES, waiting, done, decision)
    assert target_of_delivery(SIGNAL)(waiting) == [Request(NS, "human")]
    assert target_of_delivery(APPROVAL_POLICY)(waiting) == []
    assert target_of_delivery(APPROVAL_POLICY)(decision) == [Request(NS, "human")]
    assert target_of_delivery(SIGNAL)(delivery("x", None)) == []
    assert undelivered_for(c, SIGNAL)(obj("human")) == [Request(NS, "w")]
    assert undelivered_for(c, APPROVAL_POLICY)(obj("human")) == [Request(NS, "dec")]


# -- Budget -----------------------------------------------------------------------------------------


class StatusClient:
    """Just enough of `Client` for a status write."""

    def __init__(self) -> None:
        self.writes: list[dict[str, Any]] = []

    async def update_status(self, ref: ResourceRef, body: dict[str, Any]) -> dict[str, Any]:
        self.writes.append(body)
        return body


def agent_run(
    name: str,
    *,
    budget: str | None = "team",
    agent: str = "coder",
    phase: str = "Running",
    finished: float | None = None,
    started: float = 200,
    status: dict[str, Any] | None = None,
    workload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"agentRef": {"name": agent}, "runtime": {"type": "job"}}
    if budget:
        spec["budgetRef"] = {"name": budget}
    if workload:
        spec["workload"] = workload
    st: dict[str, Any] = {"phase": phase, "startedAt": at(started)} | (status or {})
    if finished is not None:
        st["finishedAt"] = at(finished)
    return {
        "kind": "AgentRun",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}"},
        "spec": spec,
        "status": st,
    }


def job_and_pod(
    run: str, *, cpu: str, started: float, finished: float | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    job = {
        "metadata": {
            "name": f"{run}-job",
            "namespace": NS,
            "ownerReferences": [{"kind": "AgentRun", "name": run, "uid": f"uid-{run}", "controller": True}],
        },
        "spec": {
            "template": {"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}}
        },
    }
    if finished is None:
        state = {"running": {"startedAt": at(started)}}
    else:
        state = {"terminated": {"startedAt": at(started), "finishedAt": at(finished)}}
    pod = {
        "metadata": {"name": f"{run}-pod", "namespace": NS, "labels": {"job-name": f"{run}-job"}},
        "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]},
        "status": {
            "phase": "Running" if finished is None else "Succeeded",
            "containerStatuses": [{"name": "c", "state": state}],
        },
    }
    return job, pod


def budget(
    limits: dict[str, Any], window: str | None = None, status: dict[str, Any] | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {"limits": limits}
    if window:
        spec["window"] = window
    b = obj("team", spec, generation=1, resourceVersion="1")
    b["kind"] = "Budget"
    if status:
        b["status"] = status
    return b


def test_counted_runs_directly_and_through_the_agent() -> None:
    c = cache()
    c.add(AGENTS, obj("coder", {"budgetRef": {"name": "team"}}), obj("other"))
    c.add(
        AGENTRUNS,
        agent_run("direct", agent="other"),
        agent_run("via-agent", budget=None),
        agent_run("elsewhere", budget="private"),  # its own budget wins over the agent's
        agent_run("unrelated", budget=None, agent="other"),
    )
    assert [r["metadata"]["name"] for r in counted_runs(c, NS, "team")] == ["direct", "via-agent"]
    assert budget_of_run(c)(agent_run("via-agent", budget=None)) == [Request(NS, "team")]
    assert budget_of_run(c)(agent_run("x", budget=None, agent="other")) == []


async def reconcile(c: FakeCache, now: datetime = NOW) -> tuple[Any, StatusClient, FakeEventRecorder]:
    client = StatusClient()
    events = FakeEventRecorder()
    rec = BudgetReconciler(cast(Client, client), c, events, lambda: now)
    result = await rec.reconcile(Request(NS, "team"))
    return result, client, events


def conds(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {x["type"]: (x["status"], x["reason"]) for x in status["conditions"]}


async def test_a_budget_counts_pods_and_runner_usage_and_reports_exceeded() -> None:
    c = cache()
    done = agent_run(
        "done",
        phase="Succeeded",
        finished=40,
        status={"runner": {"outputs": {"usage": {"tokens": 900, "dollars": 1.5}}}},
    )
    live = agent_run("live")
    c.add(AGENTRUNS, done, live)
    for run, fin in (("done", 40), ("live", None)):
        job, pod = job_and_pod(run, cpu="2", started=100, finished=fin)
        c.add(JOBS, job)
        c.add(PODS, pod)
    c.add(BUDGETS, budget({"cpu": "300", "tokens": "1000"}))
    result, client, events = await reconcile(c)
    status = client.writes[-1]["status"]
    # done: 2 cores x 60 s; live: 2 cores x 100 s so far
    assert status["used"] == {"tokens": "900", "dollars": "1.5", "cpu": "320", "memory": "0", "gpu": "0"}
    assert status["phase"] == "Exceeded"
    assert conds(status)["Exceeded"] == ("True", "CpuExceeded")
    assert conds(status)["Ready"] == ("True", "Exceeded")
    assert conds(status)["InvalidSpec"] == ("False", "Valid")
    assert [e["uid"] for e in status["runs"]] == ["uid-done"]
    assert status["observedGeneration"] == 1
    assert events.reasons() == ["CpuExceeded"]
    assert result.requeue_after == USAGE_REFRESH_SECONDS  # a run is running: usage moves


async def test_a_deleted_run_still_counts_and_a_raised_limit_clears_exceeded() -> None:
    c = cache()
    c.add(AGENTRUNS, agent_run("done", phase="Failed", finished=40))
    job, pod = job_and_pod("done", cpu="1", started=100, finished=40)
    c.add(JOBS, job)
    c.add(PODS, pod)
    c.add(BUDGETS, budget({"cpu": "60"}))
    _, client, _ = await reconcile(c)
    first = client.writes[-1]["status"]
    assert first["phase"] == "Exceeded"
    c.delete(AGENTRUNS, "done", NS)
    c.delete(PODS, "done-pod", NS)
    c.add(BUDGETS, budget({"cpu": "61"}, status=first))
    result, client, events = await reconcile(c)
    status = client.writes[-1]["status"]
    assert status["used"]["cpu"] == "60"
    assert (status["phase"], conds(status)["Exceeded"]) == ("Active", ("False", "WithinLimits"))
    assert events.reasons() == ["WithinLimits"]
    assert result is None  # nothing runs, no window: no timer


async def test_a_finished_run_whose_pods_are_gone_is_estimated_from_its_job_template() -> None:
    c = cache()
    c.add(AGENTRUNS, agent_run("old", phase="Succeeded", started=100, finished=50))
    job, _ = job_and_pod("old", cpu="500m", started=100, finished=50)
    c.add(JOBS, job)
    c.add(BUDGETS, budget({}))
    _, client, _ = await reconcile(c)
    assert client.writes[-1]["status"]["used"]["cpu"] == "25"


async def test_a_window_drops_old_runs_and_wakes_the_budget_when_the_next_leaves() -> None:
    c = cache()
    c.add(
        AGENTRUNS,
        agent_run(
            "recent",
            phase="Succeeded",
            started=1000,
            finished=600,
            workload={"resources": {"limits": {"cpu": "1"}}},
        ),
    )
    c.add(
        BUDGETS,
        budget(
            {"cpu": "100"},
            window="1h",
            status={"runs": [{"uid": "uid-gone", "finishedAt": at(7200), "cpu": "5000"}]},
        ),
    )
    result, client, _ = await reconcile(c)
    status = client.writes[-1]["status"]
    assert status["used"]["cpu"] == "400"  # no Pods left: its workload limit (1 core) x 400 s
    assert status["windowStart"] == at(3600)
    assert [e["uid"] for e in status["runs"]] == ["uid-recent"]
    assert result.requeue_after == pytest.approx(3000.0)


async def test_an_invalid_window_or_limit_makes_the_budget_invalid() -> None:
    c = cache()
    c.add(BUDGETS, budget({"cpu": "lots"}, window="forever"))
    _, client, _ = await reconcile(c)
    status = client.writes[-1]["status"]
    assert status["phase"] == "Invalid"
    assert conds(status)["InvalidSpec"] == ("True", "InvalidLimit")
    assert conds(status)["Ready"][0] == "False"
    message = next(x["message"] for x in status["conditions"] if x["type"] == "InvalidSpec")
    assert "spec.limits.cpu" in message and "spec.window" in message


async def test_an_unchanged_budget_is_not_written_again() -> None:
    c = cache()
    c.add(BUDGETS, budget({"tokens": "10"}))
    _, client, _ = await reconcile(c)
    c.add(BUDGETS, budget({"tokens": "10"}, status=client.writes[-1]["status"]))
    _, again, _ = await reconcile(c, NOW + timedelta(seconds=5))
    assert again.writes == []
