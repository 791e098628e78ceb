"""Submission refuses (429, `BudgetExceeded`) a run whose Budget (its own or its Agent's) is exceeded, with
the controller's verdict; a missing Budget or an unwatched one refuses nothing; budget-held runs take no
queue place."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from jangar.api.refs import AGENTRUNS, AGENTS, BUDGETS
from jangar.runtime.testing import FakeCache
from jangar.server.agentruns_api import parse_submission
from jangar.services import BudgetExceeded, QueueFull, RunsService, build_agent_run
from jangar.services.submission import Submission
from jangar.settings import Settings

NOW = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)


def budget(used: str, limit: str = "100") -> dict[str, Any]:
    return {
        "metadata": {"name": "team", "namespace": "agents"},
        "spec": {"limits": {"tokens": limit}},
        "status": {"used": {"tokens": used}},
    }


def service(cache: FakeCache, **env: str) -> RunsService:
    return RunsService(None, cache, Settings.from_env(env), clock=lambda: NOW)  # type: ignore[arg-type]


def manifest(budget_ref: str | None = "team") -> dict[str, Any]:
    return build_agent_run(Submission("coder", "agents", "impl", budget_ref=budget_ref))


def test_an_exceeded_budget_is_refused_with_the_verdict() -> None:
    cache = FakeCache(AGENTRUNS, AGENTS, BUDGETS, strict=True)
    cache.add(BUDGETS, budget("100"))
    with pytest.raises(BudgetExceeded) as err:
        service(cache).refusal.check(manifest())
    assert isinstance(err.value, QueueFull)  # every surface maps it to 429 / RESOURCE_EXHAUSTED
    assert (err.value.reason, err.value.scope, err.value.budget, err.value.resource) == (
        "BudgetExceeded",
        "budget",
        "team",
        "tokens",
    )
    assert err.value.message == "budget team tokens exceeded (100/100 tokens)"


def test_the_agents_budget_counts_when_the_run_names_none() -> None:
    cache = FakeCache(AGENTRUNS, AGENTS, BUDGETS, strict=True)
    cache.add(BUDGETS, budget("150"))
    cache.add(
        AGENTS,
        {"metadata": {"name": "coder", "namespace": "agents"}, "spec": {"budgetRef": {"name": "team"}}},
    )
    with pytest.raises(BudgetExceeded):
        service(cache).refusal.check(manifest(None))


@pytest.mark.parametrize("registered", [True, False])
def test_within_missing_or_unwatched_budgets_are_not_refused(registered: bool) -> None:
    cache = FakeCache(AGENTRUNS, AGENTS, *([BUDGETS] if registered else []), strict=True)
    if registered:
        cache.add(BUDGETS, budget("99"))
    service(cache).refusal.check(manifest())
    service(cache).refusal.check(manifest("nonexistent"))


def test_budget_held_runs_take_no_queue_place() -> None:
    cache = FakeCache()
    held = {
        "metadata": {"name": "held", "namespace": "agents", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"agentRef": {"name": "coder"}},
        "status": {"phase": "Pending", "conditions": [{"type": "BudgetExceeded", "status": "True"}]},
    }
    cache.add(AGENTRUNS, held)
    svc = service(
        cache,
        JANGAR_AGENTS_CONTROLLER_QUEUE_NAMESPACE="1",
        JANGAR_AGENTS_CONTROLLER_CONCURRENCY_NAMESPACE="0",
    )
    assert svc.refusal.rejection(manifest(None)) is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"budgetRef": {"name": "team"}}, "team"),
        ({"budgetRef": "team"}, "team"),
        ({"policy": {"budgetRef": "team"}}, "team"),
        ({"policy": {"budgetRef": {"name": "team"}}}, "team"),
        ({}, None),
    ],
)
def test_the_http_body_names_the_budget(body: dict[str, Any], expected: str | None) -> None:
    sub = parse_submission(
        {"agentRef": {"name": "coder"}, "namespace": "agents", "implementation": "impl"} | body
    )
    assert sub.budget_ref == expected
    spec = build_agent_run(sub)["spec"]
    assert spec.get("budgetRef") == ({"name": expected} if expected else None)
