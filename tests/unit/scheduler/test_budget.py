"""Budget arithmetic: Pod usage (requests or limits x run time, running Pods to now), runner tokens and
dollars, windows, the ledger that outlives deleted runs, and the verdict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from jangar.conditions import format_time
from jangar.scheduler.budget import (
    Ledger,
    LedgerEntry,
    RunUsage,
    Usage,
    WindowError,
    account,
    budget_name,
    budget_verdict,
    parse_limits,
    parse_window,
    pod_amounts,
    pod_interval,
    pod_usage,
    read_ledger,
    runner_usage,
    workload_usage,
)

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds_ago: float) -> str:
    return format_time(NOW - timedelta(seconds=seconds_ago))


def container(
    name: str = "c", requests: dict[str, Any] | None = None, limits: dict[str, Any] | None = None
) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    if requests is not None:
        resources["requests"] = requests
    if limits is not None:
        resources["limits"] = limits
    return {"name": name, "resources": resources}


def pod(
    containers: list[dict[str, Any]],
    *,
    started: float | None = 100,
    finished: float | None = None,
    phase: str = "Running",
    init: list[dict[str, Any]] | None = None,
    start_time: float | None = None,
) -> dict[str, Any]:
    statuses = []
    for c in containers:
        if started is None:
            state: dict[str, Any] = {"waiting": {"reason": "ContainerCreating"}}
        elif finished is None:
            state = {"running": {"startedAt": at(started)}}
        else:
            state = {"terminated": {"startedAt": at(started), "finishedAt": at(finished), "exitCode": 0}}
        statuses.append({"name": c["name"], "state": state})
    status: dict[str, Any] = {"phase": phase, "containerStatuses": statuses}
    if start_time is not None:
        status["startTime"] = at(start_time)
    spec: dict[str, Any] = {"containers": containers}
    if init:
        spec["initContainers"] = init
    return {"metadata": {"name": "p"}, "spec": spec, "status": status}


# -- requests ---------------------------------------------------------------------------------------


def test_requests_win_over_limits_and_limits_stand_in_for_missing_requests() -> None:
    spec = {
        "containers": [
            container("a", requests={"cpu": "500m"}, limits={"cpu": "2", "memory": "1Gi"}),
            container("b", limits={"cpu": "1", "nvidia.com/gpu": "1"}),
        ]
    }
    assert pod_amounts(spec) == {"cpu": Decimal("1.5"), "memory": Decimal(1024**3), "gpu": Decimal(1)}


def test_an_init_container_larger_than_the_app_containers_sets_the_effective_request() -> None:
    spec = {
        "containers": [container("a", requests={"cpu": "1", "memory": "100Mi"})],
        "initContainers": [container("i", requests={"cpu": "3", "memory": "10Mi"})],
    }
    amounts = pod_amounts(spec)
    assert amounts["cpu"] == Decimal(3)
    assert amounts["memory"] == Decimal(100 * 1024**2)


def test_unreadable_quantities_count_as_nothing() -> None:
    assert pod_amounts({"containers": [container(requests={"cpu": "lots"})]})["cpu"] == 0


# -- run time ---------------------------------------------------------------------------------------


def test_a_finished_pod_costs_its_request_times_its_run_time() -> None:
    p = pod([container(requests={"cpu": "2", "memory": "1Gi"})], started=100, finished=40, phase="Succeeded")
    usage = pod_usage(p, NOW)
    assert usage.cpu == Decimal(120)  # 2 cores x 60 s
    assert usage.memory == Decimal(60 * 1024**3)


def test_a_running_pod_costs_up_to_now() -> None:
    p = pod([container(requests={"cpu": "250m"})], started=80)
    assert pod_usage(p, NOW).cpu == Decimal(20)
    assert pod_usage(p, NOW + timedelta(seconds=40)).cpu == Decimal(30)


def test_a_pod_that_never_started_costs_nothing() -> None:
    assert pod_usage(pod([container(requests={"cpu": "4"})], started=None, phase="Pending"), NOW) == Usage()


def test_the_pod_start_time_stands_in_when_no_container_reports_one() -> None:
    p = pod([container(requests={"cpu": "1"})], started=None, start_time=30, phase="Running")
    assert pod_interval(p, NOW) == (NOW - timedelta(seconds=30), NOW)


def test_the_pod_start_time_wins_over_a_later_container_start() -> None:
    p = pod([container(requests={"cpu": "1"})], started=10, finished=0, start_time=30, phase="Succeeded")
    assert pod_usage(p, NOW).cpu == Decimal(30)


def test_a_failed_pod_without_finish_times_costs_nothing_after_it_started() -> None:
    p = pod([container(requests={"cpu": "1"})], started=None, start_time=30, phase="Failed")
    assert pod_usage(p, NOW).cpu == 0


def test_workload_estimate_over_the_runs_own_times() -> None:
    spec = {"containers": [container(requests={"cpu": "1"})]}
    assert workload_usage(spec, NOW - timedelta(seconds=10), NOW).cpu == Decimal(10)
    assert workload_usage(spec, None, NOW) == Usage()


# -- tokens and dollars -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "tokens", "dollars"),
    [
        ({"runner": {"outputs": {"usage": {"tokens": 1200, "dollars": "0.75"}}}}, 1200, Decimal("0.75")),
        ({"runner": {"outputs": {"usage": {"tokens": {"input": 100, "output": 50}}}}}, 150, 0),
        ({"runner": {"outputs": {"usage": {"tokens": "many", "dollars": -3}}}}, 0, 0),
        ({"runner": {"outputs": {"usage": "lots"}}}, 0, 0),
        ({"runner": "x"}, 0, 0),
        ({}, 0, 0),
    ],
)
def test_runner_usage_is_read_defensively(status: dict[str, Any], tokens: int, dollars: Decimal) -> None:
    usage = runner_usage({"status": status})
    assert (usage.tokens, usage.dollars) == (Decimal(tokens), Decimal(dollars))


# -- windows and limits -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("24h", 86400),
        ("30m", 1800),
        ("7d", 604800),
        ("1h30m", 5400),
        ("90s", 90),
        ("3600", 3600),
        (60, 60),
        (None, None),
        ("", None),
    ],
)
def test_windows(value: Any, seconds: float | None) -> None:
    assert parse_window(value) == seconds


@pytest.mark.parametrize("bad", ["1 day", "h", "24x", "-1h", "0", 0, True, "1h 30m"])
def test_bad_windows(bad: Any) -> None:
    with pytest.raises(WindowError):
        parse_window(bad)


def test_limits_are_parsed_and_problems_named() -> None:
    limits, problems = parse_limits(
        {"tokens": "100000", "cpu": "8", "memory": "16Gi", "dollars": "x", "gpu": "-1", "other": "5"}
    )
    assert limits == {"tokens": Decimal(100000), "cpu": Decimal(8), "memory": Decimal(16 * 1024**3)}
    assert [r for r, _ in problems] == ["dollars", "gpu"]
    assert "spec.limits.dollars" in problems[0][1]


# -- accounting -------------------------------------------------------------------------------------


def finished(uid: str, seconds_ago: float, **usage: int) -> RunUsage:
    return RunUsage(
        uid,
        "AgentRun",
        uid,
        Usage(**{k: Decimal(v) for k, v in usage.items()}),
        NOW - timedelta(seconds=seconds_ago),
    )


def running(uid: str, **usage: int) -> RunUsage:
    return RunUsage(uid, "AgentRun", uid, Usage(**{k: Decimal(v) for k, v in usage.items()}))


def test_finished_and_running_runs_add_up_and_reaching_a_limit_exceeds() -> None:
    acc = account({"cpu": Decimal(10)}, None, Ledger(), [finished("a", 50, cpu=4), running("b", cpu=6)], NOW)
    assert acc.used.cpu == Decimal(10)
    assert [r for r, _, _ in acc.exceeded] == ["cpu"]
    assert [e.uid for e in acc.ledger.entries] == ["a"]  # only finished runs enter the ledger
    assert acc.next_expiry is None


def test_a_deleted_run_keeps_counting_through_the_ledger() -> None:
    first = account({}, None, Ledger(), [finished("a", 50, tokens=500)], NOW)
    status = {"runs": [e.as_status() for e in first.ledger.entries]}
    later = account({"tokens": Decimal(400)}, None, read_ledger(status), [], NOW + timedelta(hours=1))
    assert later.used.tokens == Decimal(500)
    assert later.exceeded[0][0] == "tokens"


def test_a_run_seen_again_without_its_pods_keeps_the_larger_usage() -> None:
    first = account({}, None, Ledger(), [finished("a", 50, cpu=30)], NOW)
    again = account({}, None, first.ledger, [finished("a", 50, cpu=0, tokens=7)], NOW)
    assert (again.used.cpu, again.used.tokens) == (Decimal(30), Decimal(7))
    assert len(again.ledger.entries) == 1


def test_a_window_counts_runs_finished_inside_it_and_says_when_the_oldest_leaves() -> None:
    runs = [finished("old", 7200, cpu=100), finished("new", 600, cpu=5), running("live", cpu=1)]
    acc = account({"cpu": Decimal(50)}, 3600.0, Ledger(), runs, NOW)
    assert acc.used.cpu == Decimal(6)
    assert not acc.exceeded
    assert [e.uid for e in acc.ledger.entries] == ["new"]  # expired entries leave the ledger
    assert acc.window_start == NOW - timedelta(hours=1)
    assert acc.next_expiry == pytest.approx(3000.0)


def test_usage_falls_when_the_window_passes() -> None:
    acc = account({"cpu": Decimal(50)}, 3600.0, Ledger(), [finished("a", 600, cpu=60)], NOW)
    assert acc.exceeded
    later = account({"cpu": Decimal(50)}, 3600.0, acc.ledger, [], NOW + timedelta(seconds=3001))
    assert later.used.cpu == 0 and not later.exceeded and later.next_expiry is None


def test_the_ledger_is_bounded_and_folds_old_runs_into_carried() -> None:
    runs = [finished(f"r{i}", 1000 - i, tokens=1) for i in range(5)]
    acc = account({}, None, Ledger(), runs, NOW, max_entries=3)
    assert [e.uid for e in acc.ledger.entries] == ["r4", "r3", "r2"]
    assert (acc.ledger.carried_runs, acc.ledger.carried.tokens) == (2, Decimal(2))
    assert acc.used.tokens == Decimal(5)
    carried = acc.ledger.carried_status()
    assert carried is not None and carried["runs"] == 2 and "until" not in carried  # no window: for ever
    again = account(
        {},
        None,
        read_ledger({"runs": [e.as_status() for e in acc.ledger.entries], "carried": carried}),
        [],
        NOW,
        max_entries=3,
    )
    assert again.used.tokens == Decimal(5)


def test_carried_usage_expires_with_the_newest_run_folded_into_it() -> None:
    runs = [finished("a", 1000, tokens=10), finished("b", 900, tokens=10), finished("c", 100, tokens=1)]
    acc = account({}, 3600.0, Ledger(), runs, NOW, max_entries=1)
    assert acc.ledger.carried_until == NOW - timedelta(seconds=900)
    assert acc.used.tokens == Decimal(21)
    assert acc.next_expiry == pytest.approx(2700.0)
    later = account({}, 3600.0, acc.ledger, [], NOW + timedelta(seconds=2701), max_entries=1)
    assert later.used.tokens == Decimal(1)
    assert later.ledger.carried_runs == 0


def test_read_ledger_drops_malformed_entries() -> None:
    ledger = read_ledger(
        {
            "runs": [
                {"uid": "a", "finishedAt": at(1), "cpu": "2"},
                {"uid": "", "finishedAt": at(1)},
                {"uid": "b"},
                "x",
            ],
            "carried": "y",
        }
    )
    assert [e.uid for e in ledger.entries] == ["a"]
    assert ledger.entries[0].usage.cpu == Decimal(2)
    assert LedgerEntry("a", "AgentRun", "a", NOW, Usage()).as_status()["finishedAt"] == format_time(NOW)


# -- the verdict ------------------------------------------------------------------------------------


def budget(limits: dict[str, Any] | None, used: dict[str, Any] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": "b", "namespace": "agents"}, "spec": {}}
    if limits is not None:
        obj["spec"]["limits"] = limits
    if used is not None:
        obj["status"] = {"used": used}
    return obj


@pytest.mark.parametrize(
    ("obj", "exceeded", "reason", "resource", "message"),
    [
        (budget({"tokens": "100"}, {"tokens": "99"}), False, "WithinBudget", None, "within its limits"),
        (
            budget({"tokens": "100"}, {"tokens": "100"}),
            True,
            "BudgetExceeded",
            "tokens",
            "budget b tokens exceeded (100/100 tokens)",
        ),
        (
            budget({"cpu": "8", "memory": "1Gi"}, {"cpu": "9.5", "memory": "0"}),
            True,
            "BudgetExceeded",
            "cpu",
            "(9.5/8 core-seconds)",
        ),
        (budget({"dollars": "0"}), True, "BudgetExceeded", "dollars", "dollars exceeded (0/0 dollars)"),
        (budget(None, {"cpu": "1000"}), False, "WithinBudget", None, ""),
        (budget({"cpu": "lots"}), True, "BudgetInvalid", "cpu", "budget b is invalid: spec.limits.cpu"),
        (budget({"cpu": "8"}, {"cpu": "garbage"}), False, "WithinBudget", None, ""),
        (None, True, "BudgetNotFound", None, "budget b not found"),
    ],
)
def test_verdict(
    obj: dict[str, Any] | None, exceeded: bool, reason: str, resource: str | None, message: str
) -> None:
    verdict = budget_verdict(obj, "b")
    assert (verdict.exceeded, verdict.reason, verdict.resource) == (exceeded, reason, resource)
    assert message in verdict.message
    assert verdict.found == (obj is not None)


def test_the_runs_own_budget_wins_over_its_agents() -> None:
    agent = {"spec": {"budgetRef": {"name": "team"}}}
    assert budget_name({"spec": {"budgetRef": {"name": "mine"}}}, agent) == "mine"
    assert budget_name({"spec": {}}, agent) == "team"
    assert budget_name({"spec": {"budgetRef": {"name": " "}}}, None) is None
