"""OrchestrationRun and ToolRun records: one row per run and one per transition, in their own tables, with
the AgentRun rules (idempotent replays, stale events never move a phase back, an outage delays records and
never drops them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from jangar.storage import (
    JobRef,
    RunEvent,
    RunRecorder,
    TrackedRunEvent,
    apply_migrations,
    create_engine,
    find_tracked_runs,
    get_run,
    get_tracked_run,
)
from tests.db.conftest import RestartablePostgres
from tests.support.waiting import eventually

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def _orch(uid: str, phase: str, seconds: int = 0, **kw: Any) -> TrackedRunEvent:
    return TrackedRunEvent(
        kind="OrchestrationRun",
        uid=uid,
        namespace="agents",
        name=f"orun-{uid}",
        at=T0 + timedelta(seconds=seconds),
        phase=phase,
        **kw,
    )


def _tool(uid: str, phase: str, seconds: int = 0, **kw: Any) -> TrackedRunEvent:
    return TrackedRunEvent(
        kind="ToolRun",
        uid=uid,
        namespace="agents",
        name=f"trun-{uid}",
        at=T0 + timedelta(seconds=seconds),
        phase=phase,
        **kw,
    )


async def _rows(url: str, sql: str) -> list[dict[str, Any]]:
    engine = create_engine(url, one_shot=True)
    try:
        async with engine.connect() as conn:
            return [dict(row._mapping) for row in await conn.execute(text(sql))]
    finally:
        await engine.dispose()


@pytest.fixture
async def migrated(database_url: str) -> str:
    await apply_migrations(database_url)
    return database_url


@pytest.fixture
async def recorder(migrated: str) -> AsyncIterator[RunRecorder]:
    rec = RunRecorder(migrated, initial_backoff=0.05, max_backoff=0.2, registry=CollectorRegistry())
    await rec.start()
    yield rec
    await rec.close(timeout=5)


async def test_an_orchestration_run_lifecycle_is_recorded(recorder: RunRecorder, migrated: str) -> None:
    recorder.record(_orch("o1", "Pending"))
    recorder.record(
        _orch(
            "o1",
            "Running",
            5,
            target="ship",
            delivery_id="gh-delivery-42",
            started_at=T0 + timedelta(seconds=5),
        )
    )
    recorder.record(
        _orch("o1", "Running", 5, target="ship", reason="AwaitingApproval", message="waiting for review")
    )
    recorder.record(
        _orch(
            "o1",
            "Succeeded",
            30,
            reason="Completed",
            message="token=hunter2-secret-value in the message",
            finished_at=T0 + timedelta(seconds=30),
        )
    )
    assert await recorder.flush(timeout=10)

    engine = create_engine(migrated, one_shot=True)
    try:
        view = await get_tracked_run(engine, "OrchestrationRun", "o1")
        found = await find_tracked_runs(engine, "OrchestrationRun", "agents", delivery_id="gh-delivery-42")
    finally:
        await engine.dispose()
    assert view is not None
    record = view.record
    assert (record["name"], record["orchestration"], record["delivery_id"]) == (
        "orun-o1",
        "ship",
        "gh-delivery-42",
    )
    assert (record["phase"], record["reason"]) == ("Succeeded", "Completed")
    assert record["started_at"] == T0 + timedelta(seconds=5)
    assert record["finished_at"] == T0 + timedelta(seconds=30)
    assert "hunter2" not in (record["message"] or "")
    assert [(t.from_phase, t.to_phase) for t in view.transitions] == [
        (None, "Pending"),
        ("Pending", "Running"),
        ("Running", "Succeeded"),
    ]
    # Nothing leaks into the AgentRun tables.
    assert await _rows(migrated, "select run_uid from agent_run_records") == []
    assert [r["run_uid"] for r in found] == ["o1"]


async def test_a_tool_run_records_its_tool_job_and_parent(recorder: RunRecorder, migrated: str) -> None:
    job = JobRef(name="trun-t1-job", namespace="agents", uid="job-uid-1")
    recorder.record(
        _tool("t1", "Running", 1, target="echo-tool", job=job, parent_run="ship-1", parent_step="lint")
    )
    recorder.record(
        _tool("t1", "Failed", 9, reason="BackoffLimitExceeded", finished_at=T0 + timedelta(seconds=9))
    )
    assert await recorder.flush(timeout=10)

    [row] = await _rows(migrated, "select * from tool_run_records")
    assert (row["tool"], row["job_name"], row["job_uid"]) == ("echo-tool", "trun-t1-job", "job-uid-1")
    assert (row["parent_run"], row["parent_step"]) == ("ship-1", "lint")
    assert (row["phase"], row["reason"]) == ("Failed", "BackoffLimitExceeded")
    moves = await _rows(migrated, "select from_phase, to_phase from tool_run_transitions order by at")
    assert [(m["from_phase"], m["to_phase"]) for m in moves] == [(None, "Running"), ("Running", "Failed")]
    assert await _rows(migrated, "select run_uid from orchestration_run_records") == []


async def test_replays_and_stale_events_change_nothing(recorder: RunRecorder, migrated: str) -> None:
    recorder.record(_tool("t2", "Running", 1))
    recorder.record(_tool("t2", "Succeeded", 5, reason="Completed"))
    assert await recorder.flush(timeout=10)
    # A restarted controller records the same states again (new recorder: no in-memory dedupe) and an
    # old event arrives late: the history stays as it was.
    again = RunRecorder(migrated, initial_backoff=0.05, registry=CollectorRegistry())
    await again.start()
    try:
        again.record(_tool("t2", "Running", 1))
        again.record(_tool("t2", "Succeeded", 5, reason="Completed"))
        again.record(_tool("t2", "Pending", 0))
        assert await again.flush(timeout=10)
    finally:
        await again.close(timeout=5)
    [row] = await _rows(migrated, "select phase from tool_run_records where run_uid = 't2'")
    assert row["phase"] == "Succeeded"
    moves = await _rows(
        migrated, "select to_phase from tool_run_transitions where run_uid = 't2' order by at"
    )
    assert [m["to_phase"] for m in moves] == ["Running", "Succeeded"]


async def test_agent_run_and_tracked_events_share_one_recorder(recorder: RunRecorder, migrated: str) -> None:
    recorder.record(RunEvent(uid="a1", namespace="agents", name="agent-run", at=T0, phase="Running"))
    recorder.record(_orch("o2", "Running"))
    recorder.record(_tool("t3", "Running"))
    assert await recorder.flush(timeout=10)
    engine = create_engine(migrated, one_shot=True)
    try:
        assert (await get_run(engine, "a1")) is not None
        assert (await get_tracked_run(engine, "OrchestrationRun", "o2")) is not None
        assert (await get_tracked_run(engine, "ToolRun", "t3")) is not None
        assert (await get_tracked_run(engine, "ToolRun", "o2")) is None
    finally:
        await engine.dispose()


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        TrackedRunEvent(kind="Schedule", uid="x", namespace="agents", name="x", at=T0)


async def test_tracked_records_survive_an_outage(restartable_postgres: RestartablePostgres) -> None:
    url = restartable_postgres.url
    await apply_migrations(url)
    rec = RunRecorder(url, initial_backoff=0.05, max_backoff=0.3, registry=CollectorRegistry())
    await rec.start()
    try:
        rec.record(_orch("o3", "Pending"))
        assert await rec.flush(timeout=10)
        restartable_postgres.stop()
        rec.record(_orch("o3", "Running", 10))
        rec.record(_tool("t4", "Running", 10))
        rec.record(_tool("t4", "Succeeded", 20))
        rec.record(_orch("o3", "Succeeded", 30))
        await eventually(lambda: not rec.healthy, interval=0.02, what="the recorder to report unhealthy")
        assert rec.pending == 4
        restartable_postgres.start()
        assert await rec.flush(timeout=30)
    finally:
        assert await rec.close(timeout=5) == 0
    orch = await _rows(url, "select to_phase from orchestration_run_transitions order by at")
    tool = await _rows(url, "select to_phase from tool_run_transitions order by at")
    assert [r["to_phase"] for r in orch] == ["Pending", "Running", "Succeeded"]
    assert [r["to_phase"] for r in tool] == ["Running", "Succeeded"]
