"""The AgentRun shell with durable idempotency keys and audit events (issue 13), against the fake API server:
a refused key fails the run without a Job, an unanswerable check holds it Pending and it starts once the
check answers, and admission decisions are audited once per change."""

from __future__ import annotations

from typing import Any

from jangar.audit import AuditEvent
from jangar.controllers.idempotency import KeyCheck
from jangar.storage.idempotency import ClaimOutcome, ClaimRow, KeyClaim
from tests.unit.controllers.test_agentrun_reconciler import JOBS_COLLECTION, RUNS, World, world, writes

__all__ = ["world"]  # the fixture, imported for this module's tests


class FakeClaims:
    """Answers every claim with `outcome` (None: Postgres could not be asked)."""

    def __init__(self, outcome: ClaimOutcome | None) -> None:
        self.outcome = outcome
        self.asked: list[KeyClaim] = []

    async def check(self, claim: KeyClaim) -> KeyCheck:
        self.asked.append(claim)
        if self.outcome is None:
            return KeyCheck(claim, error="OSError: connection refused")
        return KeyCheck(claim, self.outcome, ClaimRow("uid-first", "first", True, False))


class Collect:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def emit(self, event: AuditEvent) -> None:
        self.events.append(event)

    async def close(self, timeout: float = 5.0) -> None:
        return None


def _keyed(world: World, name: str = "r1", key: str = "k1") -> dict[str, Any]:
    run = world.create_run(name, uid=f"uid-{name}")
    stored = world.stored(RUNS, name)
    assert stored is not None
    stored["spec"]["idempotencyKey"] = key
    world.fake.put(RUNS, stored)
    world.sync()
    return run


def _conds(run: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c.get("reason", "")) for c in run["status"]["conditions"]}


async def test_a_key_held_by_another_run_fails_the_run_without_a_job(world: World) -> None:
    claims, audit = FakeClaims(ClaimOutcome.IN_USE), Collect()
    world.reconciler.idempotency = claims  # type: ignore[assignment]
    world.reconciler.audit = audit
    _keyed(world)
    world.fake.requests.clear()
    await world.reconcile()
    run = world.stored(RUNS, "r1")
    assert run is not None and run["status"]["phase"] == "Failed"
    assert _conds(run)["Failed"] == ("True", "IdempotencyKeyInUse")
    assert world.stored(JOBS_COLLECTION, "r1-job") is None
    assert not any("/jobs" in p for _, p in writes(world.fake))
    assert [(c.key, c.agent, c.run_uid) for c in claims.asked] == [("k1", "coder", "uid-r1")]
    assert [(e.action, e.decision, e.reason) for e in audit.events] == [
        ("idempotency.decision", "rejected", "IdempotencyKeyInUse")
    ]
    assert world.events.reasons() == ["IdempotencyKeyInUse"]  # the Event users see


async def test_an_unanswerable_check_holds_the_run_until_it_answers(world: World) -> None:
    claims = FakeClaims(None)
    world.reconciler.idempotency = claims  # type: ignore[assignment]
    _keyed(world)
    result = await world.reconcile()
    assert result is not None and 5.0 <= result.requeue_after <= 30.0
    run = world.stored(RUNS, "r1")
    assert run is not None and run["status"]["phase"] == "Pending"
    assert _conds(run)["Warning"] == ("True", "IdempotencyCheckPending")
    assert world.stored(JOBS_COLLECTION, "r1-job") is None
    claims.outcome = ClaimOutcome.WON
    await world.reconcile()
    run = world.stored(RUNS, "r1")
    assert run is not None and run["status"]["phase"] == "Running"
    assert _conds(run)["Warning"] == ("False", "None")
    assert world.stored(JOBS_COLLECTION, "r1-job") is not None


async def test_a_run_without_a_key_is_not_checked(world: World) -> None:
    claims = FakeClaims(ClaimOutcome.IN_USE)
    world.reconciler.idempotency = claims  # type: ignore[assignment]
    world.create_run()
    await world.reconcile()
    run = world.stored(RUNS, "r1")
    assert run is not None and run["status"]["phase"] == "Running" and claims.asked == []


async def test_admission_decisions_are_audited_once_each(world: World) -> None:
    audit = Collect()
    world.reconciler.audit = audit
    world.create_run("r1", uid="uid-r1")
    await world.reconcile("r1")
    world.create_run("r2", uid="uid-r2")  # the namespace allows one running run: r2 waits
    await world.reconcile("r2")
    await world.reconcile("r2")  # still waiting: no second "held"
    decisions = [(e.name, e.decision) for e in audit.events if e.action == "admission.decision"]
    assert decisions == [("r1", "admitted"), ("r2", "held")]
    r2 = world.stored(RUNS, "r2")
    assert r2 is not None and r2["status"]["phase"] == "Queued"


async def test_a_template_and_a_cancel_request_claim_no_key(world: World) -> None:
    from jangar.api.contract import ANNOTATION_CANCEL, ANNOTATION_TEMPLATE

    claims = FakeClaims(ClaimOutcome.IN_USE)
    world.reconciler.idempotency = claims  # type: ignore[assignment]
    for name, annotation in (("tpl", ANNOTATION_TEMPLATE), ("cancelled", ANNOTATION_CANCEL)):
        _keyed(world, name)
        stored = world.stored(RUNS, name)
        assert stored is not None
        stored["metadata"]["annotations"] = {annotation: "true"}
        world.fake.put(RUNS, stored)
        world.sync()
        await world.reconcile(name)
    assert claims.asked == []
    cancelled = world.stored(RUNS, "cancelled")
    assert cancelled is not None and cancelled["status"]["phase"] == "Cancelled"
