"""Apply ``RunEvent`` (AgentRun) and ``TrackedRunEvent`` (OrchestrationRun, ToolRun) snapshots to the
database, idempotently; each kind has its own record and transition tables, with the same rules.

Each event is applied under a row lock on its run, so the previous phase (the transition's ``from``) is
read from the database itself rather than trusted from the caller. Rules:

* The run row is upserted by uid. Fields the event leaves ``None`` keep their stored value.
* A phase that differs from the stored phase adds one transition row; the same phase again adds nothing,
  and the unique key ``(run_uid, to_phase, at)`` absorbs a concurrent duplicate.
* An event older than the stored state is stale: taken at an older resourceVersion than the row's
  ``source_version`` when both are known; otherwise ``at`` before ``phase_at``, or at the same instant
  but not moving the run forward in its lifecycle. A stale event may fill empty fields but
  never moves the phase back or overwrites newer values. An event whose transition row already exists is
  a replay and does not move the phase either (this covers replays with the same timestamp).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from jangar.storage.events import RecordEvent, RunEvent, TrackedRunEvent
from jangar.storage.models import TRACKED_TABLES, RunRecord, RunTransition

_records: Table = RunRecord.__table__  # type: ignore[assignment]
_transitions: Table = RunTransition.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What one batch changed, for logs and tests."""

    events: int
    transitions: int


def _fields(event: RunEvent) -> dict[str, Any]:
    values: dict[str, Any] = {
        "namespace": event.namespace,
        "name": event.name,
        "agent": event.agent,
        "provider": event.provider,
        "implementation": event.implementation,
        "runtime_type": event.runtime_type,
        "reason": event.reason,
        "message": event.message,
        "exit_code": event.exit_code,
        "started_at": event.started_at,
        "finished_at": event.finished_at,
        "source_version": event.source_version,
    }
    if event.job is not None:
        values |= {"job_name": event.job.name, "job_namespace": event.job.namespace, "job_uid": event.job.uid}
    if event.vcs is not None:
        values |= {
            "vcs_provider": event.vcs.provider,
            "vcs_repository": event.vcs.repository,
            "vcs_base_branch": event.vcs.base_branch,
            "vcs_head_branch": event.vcs.head_branch,
            "vcs_mode": event.vcs.mode,
        }
    return {key: value for key, value in values.items() if value is not None}


def _tracked_fields(event: TrackedRunEvent) -> dict[str, Any]:
    """The columns of an OrchestrationRun or ToolRun record this event sets (``target`` by kind)."""
    values: dict[str, Any] = {
        "namespace": event.namespace,
        "name": event.name,
        TRACKED_TABLES[event.kind][2]: event.target,
        "delivery_id": event.delivery_id,
        "parent_run": event.parent_run,
        "parent_step": event.parent_step,
        "reason": event.reason,
        "message": event.message,
        "started_at": event.started_at,
        "finished_at": event.finished_at,
        "source_version": event.source_version,
    }
    if event.job is not None and event.kind == "ToolRun":
        values |= {"job_name": event.job.name, "job_namespace": event.job.namespace, "job_uid": event.job.uid}
    return {key: value for key, value in values.items() if value is not None}


# Lifecycle order of AgentRun phases (OrchestrationRuns and ToolRuns have the same ones). At the same instant a run can only move forward in it.
_PHASE_RANK = {"Pending": 0, "Queued": 1, "Running": 2, "Succeeded": 3, "Failed": 3, "Cancelled": 3}


def _is_stale(
    event: RecordEvent, phase: str | None, phase_at: datetime | None, version: int | None = None
) -> bool:
    """Whether ``event`` describes a state older than the stored one.

    When both the event and the row carry a resourceVersion (``source_version``, ``version``), it
    decides: the resourceVersion of one object only grows, so an older one is stale and a newer one is
    not, whatever the status times say (after a crash a run's ``startedAt`` can be rewritten later than
    its Job's ``finishedAt``, so times alone would call its terminal snapshot stale). Equal versions are
    the same snapshot: not stale (a replay, absorbed by the transition key).

    Without versions, times decide. Older time: stale. Same time (status times have one-second
    precision, so Running and Failed can share one): stale unless it moves the run forward in its
    lifecycle, which keeps a replayed ``Pending`` from undoing a ``Queued`` recorded in the same second.
    """
    if version is not None and event.source_version is not None:
        return event.source_version < version
    if phase_at is None:
        return False
    if event.at != phase_at:
        return event.at < phase_at
    if event.phase is None or phase is None or event.phase == phase:
        return False
    new_rank, old_rank = _PHASE_RANK.get(event.phase), _PHASE_RANK.get(phase)
    return new_rank is not None and old_rank is not None and new_rank <= old_rank


async def apply_event(conn: AsyncConnection, event: RecordEvent) -> int:
    """Apply one event inside the caller's transaction; return the number of transitions added (0 or 1)."""
    if isinstance(event, TrackedRunEvent):
        record_model, transition_model, _ = TRACKED_TABLES[event.kind]
        records: Table = record_model.__table__  # type: ignore[assignment]
        transitions: Table = transition_model.__table__  # type: ignore[assignment]
        return await _apply(conn, event, records, transitions, _tracked_fields(event))
    return await _apply(conn, event, _records, _transitions, _fields(event))


async def _apply(
    conn: AsyncConnection,
    event: RecordEvent,
    records: Table,
    transitions: Table,
    fields: dict[str, Any],
) -> int:
    await conn.execute(
        insert(records)
        .values(run_uid=event.uid, namespace=event.namespace, name=event.name)
        .on_conflict_do_nothing(index_elements=["run_uid"])
    )
    current = (
        await conn.execute(
            select(
                records.c.phase,
                records.c.phase_at,
                records.c.source_version.label("stored_version"),
                *(records.c[k] for k in fields),
            )
            .where(records.c.run_uid == event.uid)
            .with_for_update()
        )
    ).one()
    stale = _is_stale(event, current.phase, current.phase_at, current.stored_version)
    if stale:
        fields = {key: value for key, value in fields.items() if getattr(current, key) is None}
    changes_phase = event.phase is not None and event.phase != current.phase and not stale
    if changes_phase:
        inserted = await conn.execute(
            insert(transitions)
            .values(
                run_uid=event.uid,
                from_phase=current.phase,
                to_phase=event.phase,
                reason=event.reason,
                message=event.message,
                at=event.at,
            )
            .on_conflict_do_nothing(index_elements=["run_uid", "to_phase", "at"])
        )
        # The transition is already recorded: this event replays history (a retried batch, a restart),
        # so it must not move the phase, even when it carries the same timestamp as the current phase.
        changes_phase = bool(inserted.rowcount)
    if changes_phase:
        fields |= {"phase": event.phase, "phase_at": event.at}
    if fields:
        await conn.execute(
            update(records).where(records.c.run_uid == event.uid).values(**fields, updated_at=func.now())
        )
    return 1 if changes_phase else 0


async def apply_events(conn: AsyncConnection, events: Sequence[RecordEvent]) -> ApplyResult:
    """Apply ``events`` in order inside the caller's transaction (one batch, all or nothing)."""
    transitions = 0
    for event in events:
        transitions += await apply_event(conn, event)
    return ApplyResult(events=len(events), transitions=transitions)
