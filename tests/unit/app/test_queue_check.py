"""The API's early queue refusal counts what the controller's admission counts, and nothing else."""

from __future__ import annotations

from typing import Any

from jangar.server.queue_check import queue_full
from jangar.server.resources import AGENT_RUN
from jangar.settings import Settings
from tests.unit.controllers.fakecache import FakeCache


def _run(
    name: str, phase: str = "", conditions: list[dict[str, Any]] | None = None, **meta: Any
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "agents", **meta},
        "status": {"phase": phase, "conditions": conditions or []},
    }


def test_held_deleting_and_running_runs_do_not_fill_the_queue() -> None:
    settings = Settings.from_env({"JANGAR_AGENTS_CONTROLLER_QUEUE_NAMESPACE": "2"})
    cache = FakeCache()
    cache.add(AGENT_RUN, _run("waiting", "Queued"))
    cache.add(AGENT_RUN, _run("running", "Running"))
    cache.add(AGENT_RUN, _run("invalid", "Pending", [{"type": "InvalidSpec", "status": "True"}]))
    cache.add(AGENT_RUN, _run("deleting", "", deletionTimestamp="2026-01-01T00:00:00Z"))
    assert queue_full(cache, settings, "agents") is None
    cache.add(AGENT_RUN, _run("new"))
    message = queue_full(cache, settings, "agents")
    assert message == "queue limit reached in namespace agents: 2 runs waiting (limit 2)"
    assert (
        queue_full(cache, Settings.from_env({"JANGAR_AGENTS_CONTROLLER_QUEUE_NAMESPACE": "0"}), "agents")
        is None
    )
