"""Durable AgentRun idempotency keys: the claim decision (pure) and its atomic Postgres statements.

A key is scoped to (namespace, agent, key). The first run to claim it wins: `claim_key` inserts the row with
``INSERT ... ON CONFLICT DO NOTHING`` and, when the row exists already, locks it (``SELECT ... FOR UPDATE``)
and lets `decide_claim` judge the existing holder, all in one transaction, so two runs racing for a key (two
workers, two replicas after a failover) get one winner. The row records the holder's uid, so the winner's
next reconcile (or a restarted controller's) finds its own claim: a no-op.

Unlike the run records, this table is read back to decide; Kubernetes still says whether the holder exists
(the caller's `holder_of` looks it up in the informer cache while the row is locked).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Table, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from jangar.storage.models import IdempotencyKey

__all__ = [
    "ClaimOutcome",
    "ClaimRow",
    "Holder",
    "KeyClaim",
    "claim_key",
    "decide_claim",
    "prune_keys",
    "record_progress",
]

_keys: Table = IdempotencyKey.__table__  # type: ignore[assignment]


class Holder(enum.StrEnum):
    """What Kubernetes says about the run a claim row names (by name and uid)."""

    LIVE = "live"
    """It exists and has not finished."""
    FINISHED = "finished"
    """It exists and is terminal."""
    ABSENT = "absent"
    """No run of that name with that uid exists (deleted, or recreated with another uid)."""


class ClaimOutcome(enum.StrEnum):
    """The answer to "may this run use its key?"."""

    WON = "won"
    """No row existed: the run claimed the key now."""
    OWN = "own"
    """The row already names this run (a re-reconcile, a restarted controller)."""
    RECLAIMED = "reclaimed"
    """The row named a run that is gone and never started: the claim moved to this run."""
    IN_USE = "in-use"
    """Another run holds the key and has not finished: IdempotencyKeyInUse."""
    COMPLETED = "completed"
    """Another run held the key and finished (or started and was deleted): IdempotencyKeyCompleted."""

    @property
    def allowed(self) -> bool:
        return self in (ClaimOutcome.WON, ClaimOutcome.OWN, ClaimOutcome.RECLAIMED)


@dataclass(frozen=True, slots=True)
class ClaimRow:
    """The part of a claim row the decision reads."""

    run_uid: str
    run_name: str
    started: bool
    finished: bool


@dataclass(frozen=True, slots=True)
class KeyClaim:
    """One run asking for its key, with how far it got (recorded on the row when it holds the key)."""

    namespace: str
    agent: str
    key: str
    run_uid: str
    run_name: str
    started: bool = False
    finished: bool = False


def decide_claim(row: ClaimRow | None, run_uid: str, holder: Holder) -> ClaimOutcome:
    """Judge a claim of `run_uid` against the existing `row` (None: no row) whose run is `holder`.

    A stale claim (its run is gone and never started, e.g. deleted while it waited in the queue) is
    reclaimed; a run that started and was then deleted still consumed the key (it may have had effects).
    """
    if row is None:
        return ClaimOutcome.WON
    if row.run_uid == run_uid:
        return ClaimOutcome.OWN
    if holder is Holder.LIVE:
        return ClaimOutcome.IN_USE
    if holder is Holder.FINISHED:
        return ClaimOutcome.COMPLETED
    return ClaimOutcome.COMPLETED if row.started else ClaimOutcome.RECLAIMED


def _progress(claim: KeyClaim, now: datetime) -> dict[str, object]:
    values: dict[str, object] = {}
    if claim.started:
        values["started_at"] = func.coalesce(_keys.c.started_at, now)
    if claim.finished:
        values["finished_at"] = func.coalesce(_keys.c.finished_at, now)
    return values


def _row_of(claim: KeyClaim) -> tuple[ColumnElement[bool], ...]:
    """The WHERE clauses selecting the key's row: (namespace, agent, key)."""
    return (
        _keys.c.namespace == claim.namespace,
        _keys.c.agent == claim.agent,
        _keys.c.key == claim.key,
    )


async def claim_key(
    engine: AsyncEngine,
    claim: KeyClaim,
    holder_of: Callable[[ClaimRow], Holder],
    now: datetime,
) -> tuple[ClaimOutcome, ClaimRow]:
    """Claim `claim`'s key atomically; return the outcome and the row as it is afterwards.

    `holder_of` is called (at most once, synchronously, with the row locked) only when another run's row
    exists. The winner's progress (started, finished) is written with the claim.
    """
    started_at = now if claim.started else None
    async with engine.begin() as conn:
        inserted = (
            await conn.execute(
                insert(_keys)
                .values(
                    namespace=claim.namespace,
                    agent=claim.agent,
                    key=claim.key,
                    run_uid=claim.run_uid,
                    run_name=claim.run_name,
                    claimed_at=now,
                    started_at=started_at,
                    finished_at=now if claim.finished else None,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["namespace", "agent", "key"])
                .returning(_keys.c.run_uid)
            )
        ).first()
        mine = ClaimRow(claim.run_uid, claim.run_name, started_at is not None, claim.finished)
        if inserted is not None:
            return ClaimOutcome.WON, mine
        where = _row_of(claim)
        found = (
            await conn.execute(
                select(_keys.c.run_uid, _keys.c.run_name, _keys.c.started_at, _keys.c.finished_at)
                .where(*where)
                .with_for_update()
            )
        ).one()
        row = ClaimRow(
            found.run_uid, found.run_name, found.started_at is not None, found.finished_at is not None
        )
        holder = Holder.ABSENT if row.run_uid == claim.run_uid else holder_of(row)
        outcome = decide_claim(row, claim.run_uid, holder)
        if outcome is ClaimOutcome.RECLAIMED:
            await conn.execute(
                update(_keys)
                .where(*where)
                .values(
                    run_uid=claim.run_uid,
                    run_name=claim.run_name,
                    claimed_at=now,
                    started_at=started_at,
                    finished_at=now if claim.finished else None,
                    updated_at=now,
                )
            )
            return outcome, mine
        if outcome is ClaimOutcome.OWN:
            values = _progress(claim, now)
            if (claim.started and not row.started) or (claim.finished and not row.finished):
                await conn.execute(update(_keys).where(*where).values(**values, updated_at=now))
                row = ClaimRow(
                    row.run_uid, row.run_name, row.started or claim.started, row.finished or claim.finished
                )
        return outcome, row


async def record_progress(engine: AsyncEngine, claim: KeyClaim, now: datetime) -> bool:
    """Mark the key held by `claim.run_uid` started/finished (never claims); True when this run holds it."""
    values = _progress(claim, now)
    async with engine.begin() as conn:
        if not values:
            found = await conn.execute(
                select(_keys.c.run_uid).where(*_row_of(claim), _keys.c.run_uid == claim.run_uid)
            )
            return found.first() is not None
        result = await conn.execute(
            update(_keys)
            .where(*_row_of(claim), _keys.c.run_uid == claim.run_uid)
            .values(**values, updated_at=now)
        )
        return bool(result.rowcount)


async def prune_keys(engine: AsyncEngine, older_than: datetime) -> int:
    """Delete the keys untouched since `older_than` (the retention); return how many."""
    async with engine.begin() as conn:
        result = await conn.execute(delete(_keys).where(_keys.c.updated_at < older_than))
        return int(result.rowcount or 0)
