"""The AgentProvider reconcile: 0.9.29 spec checks, and health from its runs into status and conditions
(Ready/Degraded per capacityFailurePolicy, Events on the transitions, recovery)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from jangar.conditions import format_time
from jangar.controllers import indexes as ix
from jangar.controllers.agentprovider import make_check_agent_provider, spec_problem
from jangar.controllers.kinds import AGENTPROVIDERS, AGENTRUNS, AGENTS
from jangar.controllers.provider_health import HealthChanged, RunFinished, provider_of_finished_run
from jangar.controllers.supporting import CheckEnv, SupportingReconciler
from jangar.runtime import Client, Request, ResourceRef
from jangar.runtime.testing import FakeCache, FakeEventRecorder
from jangar.settings import Settings

NS = "agents"
NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"binary": "codex"}, None),
        ({}, "MissingBinary"),
        ({"binary": "codex", "workload": {"serviceAccountToken": {"path": "/var/run/agents/token"}}}, None),
        (
            {
                "binary": "codex",
                "workload": {"serviceAccountToken": {"path": "/a/t", "expirationSeconds": 60}},
            },
            "InvalidServiceAccountToken",
        ),
        (
            {"binary": "codex", "workload": {"serviceAccountToken": {"path": "token"}}},
            "InvalidServiceAccountToken",
        ),
        (
            {"binary": "codex", "workload": {"serviceAccountToken": {"path": "/token"}}},
            "InvalidServiceAccountToken",
        ),
        (
            {"binary": "codex", "workload": {"serviceAccountToken": {"path": "/workspace/token"}}},
            "InvalidServiceAccountToken",
        ),
        (
            {
                "binary": "codex",
                "secretEnv": [
                    {"name": "A", "secretKeyRef": {"name": "s"}},
                    {"name": "A", "secretKeyRef": {"name": "t"}},
                ],
            },
            "DuplicateSecretEnv",
        ),
    ],
)
def test_spec_problem(spec: dict[str, Any], reason: str | None) -> None:
    problem = spec_problem(spec)
    assert (problem[0] if problem else None) == reason


def provider(
    policy: str | None = None, adapter: str | None = None, generation: int = 1, *, gated: bool = True
) -> dict[str, Any]:
    """A provider; `gated` gives it `spec.health` (the opt-in), `policy` its capacityFailurePolicy."""
    spec: dict[str, Any] = {"binary": "codex"}
    if gated:
        spec["health"] = {"capacityFailurePolicy": policy} if policy else {}
    if adapter:
        spec["adapter"] = adapter
    return {"metadata": {"name": "codex", "namespace": NS, "generation": generation}, "spec": spec}


def agent_run(name: str, phase: str, finished_ago: float, message: str = "") -> dict[str, Any]:
    status: dict[str, Any] = {
        "phase": phase,
        "finishedAt": format_time(NOW - timedelta(seconds=finished_ago)),
    }
    if message:
        status["runner"] = {"exitCode": 1, "message": message}
    return {
        "metadata": {"name": name, "namespace": NS},
        "spec": {"agentRef": {"name": "a"}},
        "status": status,
    }


def world(prov: dict[str, Any], *runs: dict[str, Any]) -> FakeCache:
    c = FakeCache(AGENTPROVIDERS, AGENTS, AGENTRUNS)
    ix.install_indexes(c)  # type: ignore[arg-type]
    c.add(AGENTPROVIDERS, prov)
    c.add(AGENTS, {"metadata": {"name": "a", "namespace": NS}, "spec": {"providerRef": {"name": "codex"}}})
    c.add(AGENTRUNS, *runs)
    return c


def conds(obj: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in obj["status"]["conditions"]}


async def write_back(c: FakeCache, now: datetime = NOW) -> tuple[dict[str, Any], FakeEventRecorder, Any]:
    """Reconcile and keep the written status in the cache (as the watch would)."""
    events = FakeEventRecorder()
    written: list[dict[str, Any]] = []

    class Client_:
        async def update_status(self, ref: ResourceRef, body: dict[str, Any]) -> dict[str, Any]:
            written.append(body)
            return body

    env = CheckEnv(settings=Settings.from_env({}), client=cast(Client, Client_()), cache=c)
    rec = SupportingReconciler(
        AGENTPROVIDERS, make_check_agent_provider(lambda: now), env, events, lambda: now
    )
    result = await rec.reconcile(Request(NS, "codex"))
    if written:
        c.add(AGENTPROVIDERS, written[-1])
    obj = c.get(AGENTPROVIDERS, "codex", NS)
    assert obj is not None
    return obj, events, result


async def test_a_healthy_provider_is_ready_with_healthy_health() -> None:
    obj, events, result = await write_back(world(provider(), agent_run("ok", "Succeeded", 5)))
    assert obj["status"]["phase"] == "Ready"
    assert conds(obj)["Ready"] == ("True", "ValidSpec") and conds(obj)["Degraded"][0] == "False"
    assert obj["status"]["health"]["state"] == "Healthy"
    assert conds(obj)["Warning"] == ("False", "None")
    assert events.events == [] and result is None


async def test_a_provider_without_spec_health_is_never_gated() -> None:
    """0.9.1 providers have no `spec.health`: a run's log tail saying "usage limit" holds nothing."""
    c = world(provider(gated=False), agent_run("r1", "Failed", 30, "You've hit your usage limit"))
    obj, events, _ = await write_back(c)
    assert obj["status"]["phase"] == "Ready" and obj["status"]["health"]["state"] == "Healthy"
    assert [e.reason for e in events.events] == []


@pytest.mark.parametrize(
    ("policy", "phase", "ready"),
    [(None, "Degraded", "True"), ("degrade", "Degraded", "True"), ("block", "Blocked", "False")],
)
async def test_a_capacity_failure_marks_the_provider_per_policy(
    policy: str | None, phase: str, ready: str
) -> None:
    c = world(provider(policy), agent_run("r1", "Failed", 30, "You've hit your usage limit"))
    obj, events, result = await write_back(c)
    assert obj["status"]["phase"] == phase
    assert conds(obj)["Ready"] == (ready, "ProviderCapacityExhausted")
    assert conds(obj)["Degraded"] == ("True", "ProviderCapacityExhausted")
    assert obj["status"]["health"]["failedRun"] == "r1"
    assert [(e.type, e.reason) for e in events.events] == [("Warning", "ProviderCapacityExhausted")]
    assert result is not None and result.requeue_after == 60.0


async def test_an_auth_failure_blocks_and_a_later_success_recovers_with_an_event() -> None:
    c = world(provider("degrade"), agent_run("r1", "Failed", 30, 'oauth: {"error":"invalid_grant"}'))
    obj, _, _ = await write_back(c)
    assert obj["status"]["phase"] == "Blocked"
    assert conds(obj)["Ready"] == ("False", "ProviderAuthFailed")
    c.add(AGENTRUNS, agent_run("r2", "Succeeded", 1))
    obj, events, _ = await write_back(c)
    assert obj["status"]["phase"] == "Ready" and obj["status"]["health"]["state"] == "Healthy"
    assert conds(obj)["Degraded"][0] == "False"
    assert [(e.type, e.reason) for e in events.events] == [("Normal", "ProviderRecovered")]


async def test_the_cooldown_ends_the_hold() -> None:
    c = world(provider("block"), agent_run("r1", "Failed", 30, "rate limit reached"))
    obj, _, _ = await write_back(c)
    assert obj["status"]["health"]["until"] == format_time(NOW + timedelta(seconds=570))
    obj, _, _ = await write_back(c, NOW + timedelta(seconds=571))
    assert obj["status"]["phase"] == "Ready"


async def test_an_unknown_adapter_is_accepted_with_a_warning() -> None:
    obj, _, _ = await write_back(world(provider(adapter="claude-sdk")))
    assert obj["status"]["phase"] == "Ready"
    assert conds(obj)["Warning"] == ("True", "UnknownAdapter")
    obj, _, _ = await write_back(world(provider(adapter="codex-app-server")))
    assert conds(obj)["Warning"] == ("False", "None")


def test_mappers_and_predicates() -> None:
    c = world(provider())
    finished = agent_run("r1", "Failed", 1)
    running = {**finished, "status": {"phase": "Running"}}
    assert provider_of_finished_run(c)(finished) == [Request(NS, "codex")]
    assert provider_of_finished_run(c)(running) == []
    assert RunFinished().update(running, finished) and not RunFinished().update(finished, finished)
    assert RunFinished().create(finished) and not RunFinished().create(running)
    p = provider()
    held = {**p, "status": {"health": {"state": "CapacityExhausted", "generation": 1, "until": "x"}}}
    assert HealthChanged().update(p, held) and not HealthChanged().update(held, held)
