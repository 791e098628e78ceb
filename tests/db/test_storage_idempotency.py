"""Property: replaying any recorded history (a retry, a restart re-deriving state) changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from jangar.storage import RunEvent, apply_events, apply_migrations, create_engine

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
LIFECYCLE = ["Pending", "Queued", "Running"]
TERMINAL = ["Succeeded", "Failed", "Cancelled"]

# One step: which run, how far its phase moves forward (0: same phase; the controller's runs only move
# forward), whether the snapshot carries a phase at all, how much time passes, and a field value.
steps = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),
        st.integers(min_value=0, max_value=2),
        st.booleans(),
        st.integers(min_value=0, max_value=3),  # seconds; 0 means the same instant (1 s precision)
        st.sampled_from([None, "codex", "other"]),
    ),
    min_size=1,
    max_size=12,
)
Step = tuple[str, int, bool, int, str | None]


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await apply_migrations(database_url)
    eng = create_engine(database_url)
    yield eng
    await eng.dispose()


def _events(prefix: str, history: list[Step], terminal: str) -> list[RunEvent]:
    at = T0
    rank = {"a": 0, "b": 0}
    events = []
    for uid, move, has_phase, advance, agent in history:
        at += timedelta(seconds=advance)
        rank[uid] = min(rank[uid] + move, len(LIFECYCLE))
        phase = LIFECYCLE[rank[uid]] if rank[uid] < len(LIFECYCLE) else terminal
        events.append(
            RunEvent(
                uid=f"{prefix}-{uid}",
                namespace="ns",
                name=uid,
                at=at,
                phase=phase if has_phase else None,
                agent=agent,
            )
        )
    return events


async def _snapshot(engine: AsyncEngine, prefix: str) -> tuple[list[Any], list[Any]]:
    async with engine.connect() as conn:
        runs = await conn.execute(
            text(
                "select run_uid, phase, phase_at, agent from agent_run_records where run_uid like :p order by 1"
            ),
            {"p": f"{prefix}-%"},
        )
        moves = await conn.execute(
            text(
                "select run_uid, from_phase, to_phase, at from agent_run_transitions"
                " where run_uid like :p order by run_uid, id"
            ),
            {"p": f"{prefix}-%"},
        )
        return [tuple(r) for r in runs], [tuple(r) for r in moves]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=steps, terminal=st.sampled_from(TERMINAL), replay_from=st.integers(min_value=0, max_value=12))
async def test_replaying_a_suffix_or_the_whole_history_changes_nothing(
    engine: AsyncEngine, history: list[Step], terminal: str, replay_from: int
) -> None:
    prefix = uuid.uuid4().hex[:8]
    events = _events(prefix, history, terminal)
    async with engine.begin() as conn:
        await apply_events(conn, events)
    before = await _snapshot(engine, prefix)

    async with engine.begin() as conn:
        await apply_events(conn, events[replay_from:])  # a failed batch retried after partial success
    assert await _snapshot(engine, prefix) == before
    async with engine.begin() as conn:
        await apply_events(conn, events)  # a restarted controller re-recording everything
    assert await _snapshot(engine, prefix) == before

    runs, moves = before
    for run_uid, phase, _phase_at, _agent in runs:
        chain = [m for m in moves if m[0] == run_uid]
        # Transitions form a chain: each starts where the previous ended, ending at the stored phase.
        for previous, current in pairwise(chain):
            assert current[1] == previous[2]
        assert (chain[-1][2] if chain else None) == phase
