from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jangar.scheduler.ttl import clamp_job_ttl, job_ttl_seconds, retention_remaining, retention_seconds
from jangar.settings import Settings
from tests.unit.scheduler.objects import agent_run

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), (0, None), (-5, None), (1, 30), (29.9, 30), (600.7, 600), (10**9, 604_800)],
)
def test_clamp(value: float | None, expected: int | None) -> None:
    assert clamp_job_ttl(value) == expected


def test_job_ttl_prefers_run_config_then_controller_default() -> None:
    settings = Settings.from_env({"JANGAR_AGENT_RUNNER_JOB_TTL_SECONDS": "900"})
    assert job_ttl_seconds(agent_run(), settings) == 900
    assert job_ttl_seconds(agent_run(config={"ttlSecondsAfterFinished": 45}), settings) == 45
    assert job_ttl_seconds(agent_run(config={"ttlSecondsAfterFinished": "10"}), settings) == 30
    assert job_ttl_seconds(agent_run(config={"ttlSecondsAfterFinished": 0}), settings) is None
    assert (
        job_ttl_seconds(agent_run(), Settings.from_env({"JANGAR_AGENT_RUNNER_JOB_TTL_SECONDS": "0"})) is None
    )
    assert job_ttl_seconds(agent_run(), Settings()) == 600


def finished(seconds_ago: float, **spec: Any) -> dict[str, Any]:
    run = agent_run(**spec)
    run["status"] = {"phase": "Succeeded", "finishedAt": (NOW - timedelta(seconds=seconds_ago)).isoformat()}
    return run


def test_retention_cases_from_reference_tests() -> None:
    env60 = Settings.from_env({"JANGAR_AGENTS_CONTROLLER_AGENTRUN_RETENTION_SECONDS": "60"})
    env3600 = Settings.from_env({"JANGAR_AGENTS_CONTROLLER_AGENTRUN_RETENTION_SECONDS": "3600"})
    remaining = retention_remaining(finished(120), env60, NOW)
    assert remaining is not None and remaining <= 0  # delete
    remaining = retention_remaining(finished(120, ttlSecondsAfterFinished=60), env3600, NOW)
    assert remaining is not None and remaining <= 0  # per-run beats env
    assert retention_remaining(finished(10**6, ttlSecondsAfterFinished=0), env60, NOW) is None  # never
    assert retention_remaining(finished(0), env3600, NOW) == 3600  # requeue after an hour
    assert retention_seconds(agent_run(ttlSecondsAfterFinished=30), env3600) == 30
    assert retention_seconds(agent_run(), Settings()) == 2_592_000


def test_retention_needs_terminal_phase_and_finished_at() -> None:
    run = finished(10**6)
    run["status"] = {"phase": "Running", "finishedAt": run["status"]["finishedAt"]}
    assert retention_remaining(run, Settings(), NOW) is None
