"""Provider health from runs' outcomes: classification, the verdict per policy, recovery, and the hold."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jangar.conditions import format_time
from jangar.scheduler.provider_health import (
    REASON_AUTH,
    REASON_CAPACITY,
    RunOutcome,
    classify_failure,
    failure_text,
    provider_health,
    provider_hold,
    run_outcome,
)

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
COOLDOWN = 600.0


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("You've hit your usage limit. Upgrade to Pro or try again in 3 hours.", "capacity"),
        ("error: 429 Too Many Requests", "capacity"),
        ("Rate limit reached for gpt-5 in organization org-x", "capacity"),
        ('{"error": {"code": "insufficient_quota"}}', "capacity"),
        ("stream error: exceeded your current quota", "capacity"),
        ("Your access token could not be refreshed because your refresh token has expired", "auth"),
        ("token expired; please log in again", "auth"),
        ('oauth error: {"error": "invalid_grant"}', "auth"),
        ("401 Unauthorized: invalid_api_key", "auth"),
        # auth wins when both appear (a rate-limit hint on a revoked token)
        ("rate limit notice; token has expired", "auth"),
        ("container agent-runner exited with code 1: tests failed", None),
        ("OOMKilled", None),
        ("", None),
        (None, None),
    ],
)
def test_classify_failure(text: str | None, kind: str | None) -> None:
    assert classify_failure(text) == kind


def failed_run(name: str, finished_ago: float, message: str, phase: str = "Failed") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "agents"},
        "status": {
            "phase": phase,
            "finishedAt": format_time(ago(finished_ago)),
            "runner": {"exitCode": 1, "message": message},
            "conditions": [{"type": "Failed", "status": "True", "message": "exited with code 1"}],
        },
    }


def test_failure_text_reads_the_runner_and_the_failed_condition_bounded() -> None:
    run = failed_run("r", 1, "x" * 10_000 + " usage limit")
    text = failure_text(run)
    assert len(text) <= 4096 and text.endswith("exited with code 1")
    assert classify_failure(text) == "capacity"


def test_run_outcome_only_for_finished_runs() -> None:
    assert run_outcome({"metadata": {"name": "r"}, "status": {"phase": "Running"}}) is None
    assert run_outcome({"metadata": {"name": "r"}, "status": {"phase": "Failed"}}) is None  # no finishedAt
    outcome = run_outcome(failed_run("r", 5, "Rate limit reached"))
    assert outcome == RunOutcome("r", False, ago(5), "capacity", "Rate limit reached")


def prov(
    policy: str | None = None,
    generation: int = 1,
    health: dict[str, Any] | None = None,
    *,
    gated: bool = True,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"binary": "codex"}
    if gated:  # `spec.health` is the opt-in; `{}` gates with the default policy
        spec["health"] = {"capacityFailurePolicy": policy} if policy else {}
    obj: dict[str, Any] = {
        "metadata": {"name": "codex", "namespace": "agents", "generation": generation},
        "spec": spec,
    }
    if health is not None:
        obj["status"] = {"health": health}
    return obj


CAP = RunOutcome("r-cap", False, ago(60), "capacity", "usage limit")
AUTH = RunOutcome("r-auth", False, ago(60), "auth", "invalid_grant")
OTHER = RunOutcome("r-other", False, ago(30), None)
OK_AFTER = RunOutcome("r-ok", True, ago(10))
OK_BEFORE = RunOutcome("r-ok-old", True, ago(120))
OLD_CAP = RunOutcome("r-old", False, ago(COOLDOWN + 1), "capacity")


@pytest.mark.parametrize(
    ("provider", "outcomes", "state", "reason", "ready"),
    [
        (prov(), [], "Healthy", "Healthy", True),
        (prov(), [OTHER], "Healthy", "Healthy", True),  # an ordinary failure says nothing of the provider
        (prov(), [CAP, OK_BEFORE], "CapacityExhausted", REASON_CAPACITY, True),  # degrade is the default
        (prov("degrade"), [CAP], "CapacityExhausted", REASON_CAPACITY, True),
        (prov("block"), [CAP], "CapacityExhausted", REASON_CAPACITY, False),
        (prov("degrade"), [AUTH], "AuthFailed", REASON_AUTH, False),  # auth is never just degraded
        (prov("block"), [CAP, OTHER], "CapacityExhausted", REASON_CAPACITY, False),
        (prov(), [CAP, OK_AFTER], "Healthy", "Healthy", True),  # a later success recovers
        (prov(), [OLD_CAP], "Healthy", "Healthy", True),  # the cool-down has passed
        (prov(gated=False), [CAP], "Healthy", "Healthy", True),  # no spec.health (0.9.1): never gated
        (prov(gated=False), [AUTH], "Healthy", "Healthy", True),
    ],
)
def test_provider_health(
    provider: dict[str, Any], outcomes: list[RunOutcome], state: str, reason: str, ready: bool
) -> None:
    health = provider_health(provider, outcomes, now=NOW, cooldown_seconds=COOLDOWN)
    assert (health.state, health.reason, health.ready) == (state, reason, ready)
    if state != "Healthy":
        assert health.until == ago(60) + timedelta(seconds=COOLDOWN)
        assert health.failed_run in ("r-cap", "r-auth")
        assert "new runs wait until" in health.message


def test_a_spec_change_forgets_earlier_failures() -> None:
    before = prov("block", generation=1)
    unhealthy = provider_health(before, [CAP], now=NOW, cooldown_seconds=COOLDOWN)
    assert unhealthy.state == "CapacityExhausted" and unhealthy.generation == 1
    edited = prov("block", generation=2, health=unhealthy.status())
    cleared = provider_health(edited, [CAP], now=NOW, cooldown_seconds=COOLDOWN)
    assert cleared.state == "Healthy" and cleared.reset_at == NOW and cleared.generation == 2
    # the reset is kept: later passes still ignore that failure, a new one counts
    again = prov("block", generation=2, health=cleared.status())
    assert provider_health(again, [CAP], now=NOW + timedelta(seconds=5), cooldown_seconds=COOLDOWN).healthy
    fresh = RunOutcome("r-new", False, NOW + timedelta(seconds=1), "capacity")
    later = provider_health(again, [CAP, fresh], now=NOW + timedelta(seconds=5), cooldown_seconds=COOLDOWN)
    assert later.state == "CapacityExhausted" and later.failed_run == "r-new"


def test_cooldown_zero_turns_gating_off() -> None:
    assert provider_health(prov("block"), [CAP], now=NOW, cooldown_seconds=0).healthy


def held_provider(until_in: float, generation: int = 1, health_generation: int = 1) -> dict[str, Any]:
    return prov(
        generation=generation,
        health={
            "state": "CapacityExhausted",
            "reason": REASON_CAPACITY,
            "message": "run r hit provider codex's capacity",
            "until": format_time(NOW + timedelta(seconds=until_in)),
            "generation": health_generation,
        },
    )


@pytest.mark.parametrize(
    ("provider", "held"),
    [
        (None, False),
        (prov(), False),
        (prov(health={"state": "Healthy"}), False),
        (held_provider(120), True),
        (held_provider(-1), False),  # expired: a stalled provider controller never holds runs for good
        (held_provider(120, generation=2), False),  # the spec changed since: not held any more
    ],
)
def test_provider_hold(provider: dict[str, Any] | None, held: bool) -> None:
    hold = provider_hold(provider, NOW)
    assert (hold is not None) == held
    if hold is not None:
        assert hold.reason == REASON_CAPACITY and hold.provider == "codex"
        assert hold.until == NOW + timedelta(seconds=120)


def test_a_run_that_failed_before_it_started_says_nothing_about_the_provider() -> None:
    """A run refused before its Job (an idempotency key, a bad spec) carries jangar's message, which can
    quote user text such as a key `fix-rate-limit`: it must not hold every run of the provider."""
    never_started = {
        "metadata": {"name": "dup", "namespace": "agents"},
        "status": {
            "phase": "Failed",
            "finishedAt": format_time(ago(5)),
            "reason": "IdempotencyKeyCompleted",
            "message": "the idempotency key 'fix-rate-limit' of agent 'coder' was already used",
            "conditions": [{"type": "Failed", "status": "True", "message": "key 'fix-rate-limit' used"}],
        },
    }
    assert run_outcome(never_started) is None
    started = copy.deepcopy(never_started)
    started["status"]["startedAt"] = format_time(ago(60))
    outcome = run_outcome(started)
    assert outcome is not None and outcome.kind == "capacity"
