"""The AgentRun's durable idempotency check: `run_key`, `IdempotencyClaims.check` (its memo, outage and
timeout handling, with the Postgres statements replaced) and the pure `key_plan` table."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from jangar.api.contract import Phase
from jangar.controllers import idempotency as claims_mod
from jangar.controllers.agentrun.idempotency_gate import (
    KEY_COMPLETED,
    KEY_IN_USE,
    KEY_PENDING,
    key_plan,
    with_retry,
)
from jangar.controllers.idempotency import IdempotencyClaims, KeyCheck, run_key
from jangar.controllers.kinds import AGENTRUNS
from jangar.runtime import Result
from jangar.storage.idempotency import ClaimOutcome, ClaimRow, Holder, KeyClaim
from tests.unit.controllers.agentrun_objects import NOW, conditions, run, snapshot


class _Cache:
    def __init__(self, *objs: dict[str, Any]) -> None:
        self.objs = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objs}

    def get(self, ref: Any, name: str, namespace: str | None = None, copy: bool = True) -> Any:
        assert ref is AGENTRUNS
        return self.objs.get((namespace or "", name))


def _claims(cache: _Cache | None = None, timeout: float = 5.0) -> IdempotencyClaims:
    return IdempotencyClaims(object(), cache or _Cache(), clock=lambda: NOW, timeout=timeout)  # type: ignore[arg-type]


# -- run_key -----------------------------------------------------------------------------------------------


def test_run_key_reads_the_scope_and_progress() -> None:
    assert run_key(run()) is None  # no key
    assert run_key(run(idempotencyKey="k", deleting=True)) is None
    claim = run_key(run(idempotencyKey="k"))
    assert claim == KeyClaim("agents", "agent-1", "k", "uid-run-1", "run-1", started=False, finished=False)
    started = run_key(run(Phase.RUNNING, idempotencyKey="k", status={"startedAt": "2026-06-01T11:59:55Z"}))
    assert started is not None and started.started and not started.finished
    done = run_key(run(Phase.FAILED, idempotencyKey="k"))
    assert done is not None and done.finished and not done.started


# -- IdempotencyClaims.check -------------------------------------------------------------------------------


async def test_a_committed_claim_is_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    async def claim_key(engine: Any, claim: KeyClaim, holder_of: Any, now: Any) -> Any:
        calls.append("claim")
        return ClaimOutcome.WON, ClaimRow(claim.run_uid, claim.run_name, False, False)

    async def record_progress(engine: Any, claim: KeyClaim, now: Any) -> bool:
        calls.append("progress")
        return True

    monkeypatch.setattr(claims_mod, "claim_key", claim_key)
    monkeypatch.setattr(claims_mod, "record_progress", record_progress)
    claims = _claims()
    claim = KeyClaim("agents", "agent-1", "k", "uid-1", "run-1")
    assert (await claims.check(claim)).outcome is ClaimOutcome.WON
    assert (await claims.check(claim)).outcome is ClaimOutcome.OWN  # no second round trip
    assert calls == ["claim"]
    started = KeyClaim("agents", "agent-1", "k", "uid-1", "run-1", started=True)
    assert (await claims.check(started)).outcome is ClaimOutcome.OWN
    assert (await claims.check(started)).outcome is ClaimOutcome.OWN
    assert calls == ["claim", "progress"]


async def test_a_refused_claim_is_asked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0

    async def claim_key(engine: Any, claim: KeyClaim, holder_of: Any, now: Any) -> Any:
        nonlocal calls
        calls += 1
        return ClaimOutcome.IN_USE, ClaimRow("uid-other", "first", False, False)

    monkeypatch.setattr(claims_mod, "claim_key", claim_key)
    claims = _claims()
    claim = KeyClaim("agents", "agent-1", "k", "uid-1", "run-1")
    for _ in range(2):
        check = await claims.check(claim)
        assert check.outcome is ClaimOutcome.IN_USE and check.holder is not None
    assert calls == 2


async def test_an_outage_or_a_hang_is_unavailable_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def down(engine: Any, claim: KeyClaim, holder_of: Any, now: Any) -> Any:
        raise OSError("connect to postgres://jangar:s3cret@db:5432/jangar refused")

    monkeypatch.setattr(claims_mod, "claim_key", down)
    check = await _claims().check(KeyClaim("agents", "agent-1", "k", "uid-1", "run-1"))
    assert check.unavailable and check.error is not None
    assert "s3cret" not in check.error and "OSError" in check.error

    async def hang(engine: Any, claim: KeyClaim, holder_of: Any, now: Any) -> Any:
        await asyncio.sleep(60)

    monkeypatch.setattr(claims_mod, "claim_key", hang)
    check = await _claims(timeout=0.05).check(KeyClaim("agents", "agent-1", "k", "uid-1", "run-1"))
    assert check.unavailable and check.error == "timed out"


def test_the_holder_is_judged_by_name_and_uid() -> None:
    live = run(Phase.RUNNING)
    done = {**run(Phase.SUCCEEDED), "metadata": {**run()["metadata"], "name": "done"}}
    claims = _claims(_Cache(live, done))
    assert claims.holder_of(ClaimRow("uid-run-1", "run-1", True, False), "agents") is Holder.LIVE
    assert claims.holder_of(ClaimRow("uid-run-1", "done", True, False), "agents") is Holder.FINISHED
    assert claims.holder_of(ClaimRow("uid-old", "run-1", True, False), "agents") is Holder.ABSENT  # recreated
    assert claims.holder_of(ClaimRow("uid-run-1", "gone", False, False), "agents") is Holder.ABSENT
    deleting = _claims(_Cache(run(Phase.RUNNING, deleting=True)))
    assert deleting.holder_of(ClaimRow("uid-run-1", "run-1", False, False), "agents") is Holder.ABSENT


# -- key_plan ----------------------------------------------------------------------------------------------

_FRESH = KeyClaim("agents", "agent-1", "k", "uid-run-1", "run-1")
_FIRST = ClaimRow("uid-first", "first", False, False)


@pytest.mark.parametrize(
    ("check", "phase", "reason"),
    [
        (None, None, None),
        (KeyCheck(_FRESH, ClaimOutcome.WON, _FIRST), None, None),
        (KeyCheck(_FRESH, ClaimOutcome.OWN, _FIRST), None, None),
        (KeyCheck(_FRESH, ClaimOutcome.RECLAIMED, _FIRST), None, None),
        (KeyCheck(_FRESH, ClaimOutcome.IN_USE, _FIRST), Phase.FAILED, KEY_IN_USE),
        (KeyCheck(_FRESH, ClaimOutcome.COMPLETED, _FIRST), Phase.FAILED, KEY_COMPLETED),
        (KeyCheck(_FRESH, error="OSError: refused"), Phase.PENDING, KEY_PENDING),
        # a started or finished run is never stopped by its key (it only records progress)
        (
            KeyCheck(KeyClaim("agents", "agent-1", "k", "uid-run-1", "run-1", started=True), error="x"),
            None,
            None,
        ),
        (
            KeyCheck(
                KeyClaim("agents", "agent-1", "k", "uid-run-1", "run-1", finished=True),
                ClaimOutcome.COMPLETED,
            ),
            None,
            None,
        ),
    ],
)
def test_key_plan(check: KeyCheck | None, phase: str | None, reason: str | None) -> None:
    plan = key_plan(snapshot(run(idempotencyKey="k")), check, retry_after=7.0)
    if phase is None:
        assert plan is None
        return
    assert plan is not None and plan.status is not None
    assert plan.status.phase == phase
    conds = conditions(plan.status.status)
    if phase == Phase.FAILED:
        assert conds["Failed"] == ("True", reason)
        assert "first" in plan.status.details.message and plan.requeue_after is None and plan.create is None
        assert plan.release_admission
    else:
        assert conds["Warning"] == ("True", KEY_PENDING)
        assert conds["Failed"][0] == "False"
        assert plan.requeue_after == 7.0 and plan.create is None
        assert "DATABASE_URL" in plan.status.details.message


def test_a_stopped_run_without_finalizer_gets_it() -> None:
    check = KeyCheck(_FRESH, ClaimOutcome.IN_USE, _FIRST)
    plan = key_plan(snapshot(run(idempotencyKey="k", finalizer=False)), check)
    assert plan is not None and plan.add_finalizer


def test_with_retry_brings_a_failed_progress_write_forward() -> None:
    ok = KeyCheck(_FRESH, ClaimOutcome.OWN)
    down = KeyCheck(_FRESH, error="x")
    assert with_retry(None, ok) is None
    assert with_retry(Result(requeue_after=100.0), None) == Result(requeue_after=100.0)
    retried = with_retry(None, down)
    assert retried is not None and retried.requeue_after is not None and 5.0 <= retried.requeue_after <= 30.0
    sooner = with_retry(Result(requeue_after=1.0), down)
    assert sooner == Result(requeue_after=1.0)


# -- wiring and the pruner ---------------------------------------------------------------------------------


class _Manager:
    def __init__(self) -> None:
        self.cache = _Cache()
        self.added: list[tuple[Any, bool | None]] = []

    def add(self, runnable: Any, need_leader_election: bool | None = None) -> None:
        self.added.append((runnable, need_leader_election))


def test_claims_exist_only_with_a_database_and_the_feature_on() -> None:
    from jangar.settings import Settings

    for env in ({}, {"DATABASE_URL": "postgres://db/j", "JANGAR_AGENTRUN_IDEMPOTENCY_ENABLED": "false"}):
        manager = _Manager()
        assert claims_mod.install_idempotency(manager, Settings.from_env(env), lambda: NOW) is None  # type: ignore[arg-type]
        assert manager.added == []
    manager = _Manager()
    settings = Settings.from_env(
        {"DATABASE_URL": "postgres://db/j", "AGENTS_AGENTRUN_IDEMPOTENCY_RETENTION_DAYS": "9"}
    )
    claims = claims_mod.install_idempotency(manager, settings, lambda: NOW)  # type: ignore[arg-type]
    assert isinstance(claims, IdempotencyClaims)
    kinds = {type(r).__name__: r for r, _ in manager.added}
    assert kinds["IdempotencyPruner"].need_leader_election is True  # the leader prunes
    assert kinds["IdempotencyPruner"].retention.days == 9
    assert kinds["EngineCloser"].need_leader_election is False


async def test_the_pruner_cuts_at_the_retention_and_survives_an_outage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cutoffs: list[Any] = []

    async def prune(engine: Any, older_than: Any) -> int:
        cutoffs.append(older_than)
        return 3

    monkeypatch.setattr(claims_mod, "prune_keys", prune)
    pruner = claims_mod.IdempotencyPruner(object(), 30, clock=lambda: NOW)  # type: ignore[arg-type]
    assert await pruner.prune_once() == 3
    assert cutoffs == [NOW - timedelta(days=30)]

    async def down(engine: Any, older_than: Any) -> int:
        raise OSError("refused")

    monkeypatch.setattr(claims_mod, "prune_keys", down)
    assert await pruner.prune_once() == 0
