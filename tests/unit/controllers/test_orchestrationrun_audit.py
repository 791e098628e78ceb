"""The OrchestrationRun applier audits a step child it creates, once: adopting the same child on a later
pass (it exists already, controlled by this run) is not a new submission."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jangar.api.refs import AGENTRUNS, ORCHESTRATIONRUNS, TOOLRUNS
from jangar.audit import AuditEvent
from jangar.controllers.orchestrationrun.apply import PlanApplier
from jangar.controllers.orchestrationrun.plan import ChildCreate, OrchestrationRunPlan
from jangar.runtime.testing import FakeCache, FakeEventRecorder
from tests.unit.services.fakes import FakeClient

NOW = datetime(2026, 12, 1, tzinfo=UTC)


class Collect:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def emit(self, event: AuditEvent) -> None:
        self.events.append(event)

    async def close(self, timeout: float = 5.0) -> None:
        return None


def _child() -> dict[str, Any]:
    return {
        "apiVersion": "agents.proompteng.ai/v1alpha1",
        "kind": "AgentRun",
        "metadata": {
            "name": "o1-build",
            "namespace": "agents",
            "labels": {"jangar.proompteng.ai/orchestration-step": "build"},
            "ownerReferences": [
                {"kind": "OrchestrationRun", "name": "o1", "uid": "uid-o1", "controller": True}
            ],
        },
        "spec": {"agentRef": {"name": "coder"}, "parameters": {"token": "not-audited"}},
    }


async def test_a_created_step_is_audited_once() -> None:
    audit = Collect()
    client = FakeClient()

    def applier() -> PlanApplier:
        return PlanApplier(
            client=client,  # type: ignore[arg-type]
            cache=FakeCache(AGENTRUNS, TOOLRUNS, ORCHESTRATIONRUNS),
            events=FakeEventRecorder(),
            audit=audit,
        )

    parent = {"kind": "OrchestrationRun", "metadata": {"name": "o1", "namespace": "agents", "uid": "uid-o1"}}
    plan = OrchestrationRunPlan(create=(ChildCreate("AgentRun", _child()),))
    first = applier()
    await first.apply(parent, plan, NOW)
    await first.apply(parent, plan, NOW)  # created moments ago (RecentCreates): not POSTed again
    assert [c[0] for c in client.calls] == ["create"]
    await applier().apply(parent, plan, NOW)  # a restarted controller: AlreadyExists, ours, adopted
    assert [c[0] for c in client.calls] == ["create", "create", "get"]
    assert [(e.action, e.kind, e.name, e.detail.get("step")) for e in audit.events] == [
        ("orchestrationrun.step.submit", "AgentRun", "o1-build", "build")
    ]
    assert audit.events[0].uid and "not-audited" not in str(audit.events[0].as_dict())
