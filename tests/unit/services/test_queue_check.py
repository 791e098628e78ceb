"""The early queue refusal (formerly `jangar.server.queue_check`) counts what the controller's admission
counts, and nothing else: held, deleting, running and finished runs take no queue place."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jangar.api.refs import AGENTRUNS
from jangar.runtime.testing import FakeCache
from jangar.services import RunsService, build_agent_run
from jangar.services.submission import Submission
from jangar.settings import Settings

NOW = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)


def _run(
    name: str, phase: str = "", conditions: list[dict[str, Any]] | None = None, **meta: Any
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "agents",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            **meta,
        },
        "spec": {"agentRef": {"name": "coder"}},
        "status": {"phase": phase, "conditions": conditions or []},
    }


def _service(cache: FakeCache, queue: str) -> RunsService:
    settings = Settings.from_env(
        {
            "JANGAR_AGENTS_CONTROLLER_QUEUE_NAMESPACE": queue,
            "JANGAR_AGENTS_CONTROLLER_CONCURRENCY_NAMESPACE": "1",  # "running" holds the only slot
        }
    )
    return RunsService(None, cache, settings, clock=lambda: NOW)  # type: ignore[arg-type]


def test_held_deleting_and_running_runs_do_not_fill_the_queue() -> None:
    cache = FakeCache()
    cache.add(AGENTRUNS, _run("waiting", "Queued"))
    cache.add(AGENTRUNS, _run("running", "Running"))
    cache.add(AGENTRUNS, _run("done", "Succeeded"))
    cache.add(AGENTRUNS, _run("invalid", "Pending", [{"type": "InvalidSpec", "status": "True"}]))
    cache.add(AGENTRUNS, _run("deleting", "", deletionTimestamp="2026-01-01T00:00:00Z"))
    candidate = build_agent_run(Submission("coder", "agents", "impl"))
    assert _service(cache, "2").refusal.rejection(candidate) is None
    cache.add(AGENTRUNS, _run("new"))
    rejection = _service(cache, "2").refusal.rejection(candidate)
    assert rejection is not None
    assert (rejection.scope, rejection.limit) == ("namespace", 2)
    assert rejection.message == "namespace agents reached its queue limit (2 waiting); resubmit later"
    assert _service(cache, "0").refusal.rejection(candidate) is None
