"""Durable idempotency keys on a real Postgres: two runs racing for a key get one winner, the winner's
re-claim is a no-op, progress is recorded only by the holder, stale claims are reclaimed, retention prunes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from jangar.storage import apply_migrations, create_engine
from jangar.storage.idempotency import (
    ClaimOutcome,
    ClaimRow,
    Holder,
    KeyClaim,
    claim_key,
    prune_keys,
    record_progress,
)
from jangar.storage.recorder import RECORD_TABLES

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await apply_migrations(database_url)
    eng = create_engine(database_url, pool_size=4)
    yield eng
    await eng.dispose()


def _claim(uid: str, *, key: str = "k1", started: bool = False, finished: bool = False) -> KeyClaim:
    return KeyClaim("agents", "coder", key, uid, f"run-{uid}", started=started, finished=finished)


def _live(row: ClaimRow) -> Holder:
    return Holder.LIVE


def _gone(row: ClaimRow) -> Holder:
    return Holder.ABSENT


async def _rows(engine: AsyncEngine) -> list[tuple[str, str, bool, bool]]:
    async with engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT key, run_uid, started_at IS NOT NULL, finished_at IS NOT NULL "
                "FROM agent_run_idempotency_keys ORDER BY key"
            )
        )
        return [tuple(r) for r in result]  # type: ignore[misc]


def test_the_schema_check_knows_the_table() -> None:
    assert "agent_run_idempotency_keys" in RECORD_TABLES


async def test_two_runs_racing_for_a_key_get_one_winner(engine: AsyncEngine) -> None:
    for attempt in range(10):
        key = f"race-{attempt}"
        results = await asyncio.gather(
            claim_key(engine, _claim("uid-a", key=key), _live, NOW),
            claim_key(engine, _claim("uid-b", key=key), _live, NOW),
        )
        outcomes = sorted(str(outcome) for outcome, _ in results)
        assert outcomes == [str(ClaimOutcome.IN_USE), str(ClaimOutcome.WON)], outcomes
        winner = next(row for outcome, row in results if outcome is ClaimOutcome.WON)
        loser_saw = next(row for outcome, row in results if outcome is ClaimOutcome.IN_USE)
        assert loser_saw.run_uid == winner.run_uid  # the loser is told who holds the key
    assert len(await _rows(engine)) == 10


async def test_the_winner_reclaiming_is_a_no_op_and_records_its_progress(engine: AsyncEngine) -> None:
    assert (await claim_key(engine, _claim("uid-a"), _live, NOW))[0] is ClaimOutcome.WON
    holder_asked: list[ClaimRow] = []

    def ask(row: ClaimRow) -> Holder:
        holder_asked.append(row)
        return Holder.ABSENT

    outcome, _ = await claim_key(engine, _claim("uid-a"), ask, NOW + timedelta(minutes=1))
    assert outcome is ClaimOutcome.OWN and not holder_asked  # its own row: Kubernetes is not consulted
    assert await record_progress(engine, _claim("uid-a", started=True), NOW)
    assert not await record_progress(engine, _claim("uid-b", started=True), NOW)  # not the holder
    assert await _rows(engine) == [("k1", "uid-a", True, False)]
    assert await record_progress(engine, _claim("uid-a", started=True, finished=True), NOW)
    assert await _rows(engine) == [("k1", "uid-a", True, True)]
    # the key outlives its run: a later run is refused even once the first is gone
    assert (await claim_key(engine, _claim("uid-c"), _gone, NOW))[0] is ClaimOutcome.COMPLETED


async def test_a_stale_claim_is_reclaimed_a_consumed_one_is_not(engine: AsyncEngine) -> None:
    await claim_key(engine, _claim("uid-a", key="stale"), _live, NOW)  # never started, then deleted
    await claim_key(engine, _claim("uid-a", key="used", started=True), _live, NOW)  # started, then deleted
    assert (await claim_key(engine, _claim("uid-b", key="stale"), _gone, NOW))[0] is ClaimOutcome.RECLAIMED
    assert (await claim_key(engine, _claim("uid-b", key="used"), _gone, NOW))[0] is ClaimOutcome.COMPLETED
    assert await _rows(engine) == [("stale", "uid-b", False, False), ("used", "uid-a", True, False)]
    # the reclaimer now owns it; the original run (were it to come back) no longer does
    assert (await claim_key(engine, _claim("uid-b", key="stale"), _live, NOW))[0] is ClaimOutcome.OWN
    assert (await claim_key(engine, _claim("uid-a", key="stale"), _live, NOW))[0] is ClaimOutcome.IN_USE


async def test_keys_are_scoped_to_namespace_and_agent(engine: AsyncEngine) -> None:
    base = _claim("uid-a")
    other_agent = KeyClaim("agents", "reviewer", "k1", "uid-b", "run-b")
    other_ns = KeyClaim("team-b", "coder", "k1", "uid-c", "run-c")
    for claim in (base, other_agent, other_ns):
        assert (await claim_key(engine, claim, _live, NOW))[0] is ClaimOutcome.WON


async def test_retention_prunes_only_keys_older_than_it(engine: AsyncEngine) -> None:
    await claim_key(engine, _claim("uid-old", key="old"), _live, NOW - timedelta(days=31))
    await claim_key(engine, _claim("uid-new", key="new"), _live, NOW - timedelta(days=29))
    assert await prune_keys(engine, NOW - timedelta(days=30)) == 1
    assert [r[0] for r in await _rows(engine)] == ["new"]
    assert await prune_keys(engine, NOW - timedelta(days=30)) == 0
    # a pruned key may be claimed afresh
    assert (await claim_key(engine, _claim("uid-x", key="old"), _live, NOW))[0] is ClaimOutcome.WON
