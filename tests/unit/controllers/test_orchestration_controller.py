"""The Orchestration status check, the orchestration indexes and mappers, and the run snapshot reader,
over a FakeCache with the real indexes."""

from __future__ import annotations

from typing import Any

from jangar.api.refs import (
    APPROVALPOLICIES,
    ORCHESTRATIONRUNS,
    ORCHESTRATIONS,
    SIGNALDELIVERIES,
    TOOLRUNS,
    TOOLS,
)
from jangar.controllers.kinds import AGENTRUNS, AGENTS, IMPLEMENTATIONSPECS
from jangar.controllers.orchestration import check_orchestration
from jangar.controllers.orchestration_indexes import (
    install_orchestration_indexes,
    orchestrations_referencing,
    runs_for_orchestration,
    runs_waiting_for_delivery,
    runs_waiting_for_policy,
)
from jangar.controllers.orchestrationrun.snapshot import read_snapshot
from jangar.controllers.supporting import CheckEnv
from jangar.runtime import Request
from jangar.runtime.testing import FakeCache
from jangar.settings import Settings
from tests.unit.controllers.orchestration_objects import (
    NOW,
    RUN_UID,
    agent_step,
    child,
    decision,
    delivery,
    orchestration,
    orun,
    policy,
    step,
    tool_step,
)


def cache() -> FakeCache:
    c = FakeCache()
    install_orchestration_indexes(c)  # type: ignore[arg-type]
    return c


def obj(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": spec}


async def check(c: FakeCache, orch: dict[str, Any]) -> Any:
    return await check_orchestration(orch, CheckEnv(settings=Settings.from_env({}), client=None, cache=c))  # type: ignore[arg-type]


async def test_an_invalid_orchestration_says_why() -> None:
    v = await check(cache(), orchestration(tool_step("a", "a")))
    assert (v.ready, v.invalid, v.reason) == (False, True, "InvalidDependency")


async def test_missing_references_are_named_then_resolve_when_created() -> None:
    c = cache()
    orch = orchestration(agent_step("a"), tool_step("b"), step("g", "ApprovalGate", policyRef="p"))
    c.add(ORCHESTRATIONS, orch)
    v = await check(c, orch)
    assert (v.ready, v.invalid, v.phase, v.reason) == (False, False, "Pending", "MissingReferences")
    for part in ("Agent coder (step a)", "ImplementationSpec task", "Tool echo", "ApprovalPolicy p"):
        assert part in v.message
    # the index maps each referenced object to this orchestration
    assert orchestrations_referencing(c, "Tool")(obj("echo")) == [Request("ns", "flow")]
    assert orchestrations_referencing(c, "Tool")(obj("other")) == []
    for ref, name in (
        (AGENTS, "coder"),
        (IMPLEMENTATIONSPECS, "task"),
        (TOOLS, "echo"),
        (APPROVALPOLICIES, "p"),
    ):
        c.add(ref, obj(name))
    v = await check(c, orch)
    assert (v.ready, v.phase, v.reason) == (True, None, "ValidSpec")
    assert [(x.type, x.status) for x in v.conditions] == [("ReferencesResolved", True)]


def test_deliveries_and_policies_wake_only_the_waiting_runs() -> None:
    c = cache()
    waiting = orun(
        name="r1",
        phase="Running",
        steps=[
            {"name": "w", "phase": "Running", "waitingFor": {"signal": "go"}},
            {"name": "g", "phase": "Running", "waitingFor": {"deliveryId": "approval:r1:g", "policy": "p"}},
        ],
    )
    done = orun(
        name="r2",
        phase="Succeeded",
        steps=[{"name": "w", "phase": "Running", "waitingFor": {"signal": "go"}}],
    )
    idle = orun(
        name="r3",
        phase="Running",
        steps=[{"name": "w", "phase": "Succeeded", "waitingFor": {"signal": "go"}}],
    )
    c.add(ORCHESTRATIONRUNS, waiting, done, idle)
    mapper = runs_waiting_for_delivery(c)
    assert mapper(delivery("d", signal="go")) == [Request("ns", "r1")]
    assert mapper(delivery("d", signal="other", delivery_id="approval:r1:g")) == [Request("ns", "r1")]
    assert mapper(delivery("d", signal="other")) == []
    assert runs_waiting_for_policy(c)(obj("p")) == [Request("ns", "r1")]
    # unfinished runs by orchestration
    assert runs_for_orchestration(c)(obj("flow")) == [Request("ns", "r1"), Request("ns", "r3")]


def test_the_snapshot_reads_owned_children_and_matching_deliveries_through_indexes() -> None:
    c = cache()
    orch = orchestration(
        tool_step("t"),
        step("w", "SignalWait", signalRef="go"),
        step("g", "ApprovalGate", policyRef="gate-policy"),
    )
    c.add(ORCHESTRATIONS, orch)
    c.add(APPROVALPOLICIES, policy())
    mine = child("ToolRun", "r1-t-1", "t")
    mine["metadata"]["labels"]["jangar.proompteng.ai/orchestration-run"] = "r1"
    foreign = child("ToolRun", "r1-t-2", "t", owner="someone-else")
    foreign["metadata"]["labels"]["jangar.proompteng.ai/orchestration-run"] = "r1"
    c.add(TOOLRUNS, mine, foreign)
    c.add(AGENTRUNS)
    c.add(
        SIGNALDELIVERIES,
        delivery("s1", signal="go"),
        delivery("s2", signal="stop"),
        decision("g", "approved"),
    )
    run = orun()
    s = read_snapshot(c, run, NOW)
    assert list(s.children) == [("ToolRun", "r1-t-1")]
    assert s.orchestration is not None and s.policies["gate-policy"] is not None
    assert [d["metadata"]["name"] for d in s.deliveries["w"]] == ["s1"]
    assert [d["metadata"]["name"] for d in s.deliveries["g"]] == ["r1-g-decision"]
    assert run["metadata"]["uid"] == RUN_UID
