"""Read run records back: for the API, diagnostics and end-to-end tests. The controller never reads here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncEngine

from jangar.storage.models import TRACKED_TABLES, RunRecord, RunTransition

_records: Table = RunRecord.__table__  # type: ignore[assignment]
_transitions: Table = RunTransition.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class TransitionView:
    """One recorded phase change."""

    from_phase: str | None
    to_phase: str
    reason: str | None
    message: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class RunView:
    """A run record with its transitions, oldest first."""

    record: dict[str, Any]
    transitions: list[TransitionView]

    @property
    def phase(self) -> str | None:
        """The latest recorded phase."""
        value = self.record.get("phase")
        return str(value) if value is not None else None


async def get_run(engine: AsyncEngine, uid: str) -> RunView | None:
    """The record of the AgentRun with ``uid``, or None if nothing was recorded for it."""
    async with engine.connect() as conn:
        row = (await conn.execute(select(_records).where(_records.c.run_uid == uid))).mappings().first()
        if row is None:
            return None
        moves = await conn.execute(
            select(
                _transitions.c.from_phase,
                _transitions.c.to_phase,
                _transitions.c.reason,
                _transitions.c.message,
                _transitions.c.at,
            )
            .where(_transitions.c.run_uid == uid)
            .order_by(_transitions.c.at, _transitions.c.id)
        )
        return RunView(record=dict(row), transitions=[TransitionView(*m) for m in moves])


async def find_runs(
    engine: AsyncEngine, namespace: str, name: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Records in ``namespace`` (optionally one run name, across re-creations), newest first."""
    query = select(_records).where(_records.c.namespace == namespace)
    if name is not None:
        query = query.where(_records.c.name == name)
    query = query.order_by(_records.c.created_at.desc()).limit(limit)
    async with engine.connect() as conn:
        return [dict(row) for row in (await conn.execute(query)).mappings()]


# -- OrchestrationRuns and ToolRuns ------------------------------------------------------------------------


def _tracked_tables(kind: str) -> tuple[Table, Table]:
    try:
        record_model, transition_model, _ = TRACKED_TABLES[kind]
    except KeyError:
        raise ValueError(f"no records are kept for kind {kind!r}") from None
    return record_model.__table__, transition_model.__table__  # type: ignore[return-value]


async def get_tracked_run(engine: AsyncEngine, kind: str, uid: str) -> RunView | None:
    """The record of the OrchestrationRun or ToolRun with ``uid`` and its transitions, or None."""
    records, transitions = _tracked_tables(kind)
    async with engine.connect() as conn:
        row = (await conn.execute(select(records).where(records.c.run_uid == uid))).mappings().first()
        if row is None:
            return None
        moves = await conn.execute(
            select(
                transitions.c.from_phase,
                transitions.c.to_phase,
                transitions.c.reason,
                transitions.c.message,
                transitions.c.at,
            )
            .where(transitions.c.run_uid == uid)
            .order_by(transitions.c.at, transitions.c.id)
        )
        return RunView(record=dict(row), transitions=[TransitionView(*m) for m in moves])


async def find_tracked_runs(
    engine: AsyncEngine,
    kind: str,
    namespace: str,
    *,
    name: str | None = None,
    delivery_id: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """OrchestrationRun or ToolRun records in ``namespace`` (optionally by name or delivery id), newest
    first."""
    records, _ = _tracked_tables(kind)
    query = select(records).where(records.c.namespace == namespace)
    if name is not None:
        query = query.where(records.c.name == name)
    if delivery_id is not None:
        query = query.where(records.c.delivery_id == delivery_id)
    query = query.order_by(records.c.created_at.desc()).limit(limit)
    async with engine.connect() as conn:
        return [dict(row) for row in (await conn.execute(query)).mappings()]
