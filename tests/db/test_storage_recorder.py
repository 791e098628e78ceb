"""The recorder writes run records idempotently and survives a database outage without losing any."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from jangar.storage import (
    ApplyResult,
    JobRef,
    RunEvent,
    RunRecorder,
    VcsContext,
    apply_migrations,
    create_engine,
    find_runs,
    get_run,
)
from jangar.storage import recorder as recorder_module

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _event(uid: str = "uid-1", phase: str | None = "Pending", at: datetime = T0, **kw: Any) -> RunEvent:
    return RunEvent(uid=uid, namespace="agents", name=f"run-{uid}", at=at, phase=phase, **kw)


async def _rows(url: str, sql: str) -> list[dict[str, Any]]:
    engine = create_engine(url, one_shot=True)
    try:
        async with engine.connect() as conn:
            return [dict(row._mapping) for row in await conn.execute(text(sql))]
    finally:
        await engine.dispose()


def _sample(registry: CollectorRegistry, name: str) -> float:
    value = registry.get_sample_value(name)
    return 0.0 if value is None else value


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


async def test_a_run_lifecycle_is_recorded(recorder: RunRecorder, migrated: str) -> None:
    recorder.record(_event(phase="Queued", agent="codex", provider="codex-runner", runtime_type="job"))
    recorder.record(
        _event(
            phase="Running",
            at=T0 + timedelta(seconds=5),
            reason="Submitted",
            job=JobRef(name="run-uid-1-job", namespace="agents", uid="job-uid"),
            vcs=VcsContext(
                provider="github",
                repository="https://x-access-token:ghs_abcdefghijklmnopqrstuvwxyz@github.com/acme/demo.git",
                base_branch="main",
                head_branch="codex/issue-1",
            ),
            started_at=T0 + timedelta(seconds=5),
        )
    )
    recorder.record(
        _event(
            phase="Succeeded",
            at=T0 + timedelta(seconds=60),
            reason="Completed",
            exit_code=0,
            finished_at=T0 + timedelta(seconds=60),
        )
    )
    assert await recorder.flush(timeout=10)

    [run] = await _rows(migrated, "select * from agent_run_records")
    assert run["phase"] == "Succeeded"
    assert (run["agent"], run["provider"], run["runtime_type"]) == ("codex", "codex-runner", "job")
    assert (run["job_name"], run["job_uid"]) == ("run-uid-1-job", "job-uid")
    assert run["vcs_repository"] == "https://github.com/acme/demo.git"
    assert (run["vcs_base_branch"], run["vcs_head_branch"]) == ("main", "codex/issue-1")
    assert run["exit_code"] == 0
    assert run["started_at"] == T0 + timedelta(seconds=5)
    assert run["finished_at"] == T0 + timedelta(seconds=60)

    transitions = await _rows(
        migrated, "select from_phase, to_phase, reason from agent_run_transitions order by at"
    )
    assert transitions == [
        {"from_phase": None, "to_phase": "Queued", "reason": None},
        {"from_phase": "Queued", "to_phase": "Running", "reason": "Submitted"},
        {"from_phase": "Running", "to_phase": "Succeeded", "reason": "Completed"},
    ]
    assert recorder.healthy
    assert recorder.pending == 0


async def test_repeated_records_add_nothing(recorder: RunRecorder, migrated: str) -> None:
    running = _event(phase="Running", at=T0)
    for i in range(5):
        recorder.record(running)
        recorder.record(_event(phase="Running", at=T0 + timedelta(seconds=i)))
    assert await recorder.flush(timeout=10)

    # A fresh recorder (a restarted controller) re-derives the same state: still no duplicates.
    again = RunRecorder(migrated, registry=CollectorRegistry())
    await again.start()
    again.record(running)
    again.record(_event(phase="Succeeded", at=T0 + timedelta(seconds=30)))
    again.record(_event(phase="Succeeded", at=T0 + timedelta(seconds=30)))
    assert await again.flush(timeout=10)
    await again.close()

    transitions = await _rows(migrated, "select from_phase, to_phase from agent_run_transitions order by at")
    assert transitions == [
        {"from_phase": None, "to_phase": "Running"},
        {"from_phase": "Running", "to_phase": "Succeeded"},
    ]
    assert len(await _rows(migrated, "select * from agent_run_records")) == 1


async def test_less_informed_or_stale_events_do_not_erase_or_regress(
    recorder: RunRecorder, migrated: str
) -> None:
    recorder.record(_event(phase="Succeeded", at=T0 + timedelta(minutes=1), agent="codex", message="done"))
    recorder.record(_event(phase=None, at=T0 + timedelta(minutes=2)))
    recorder.record(_event(phase="Running", at=T0, message="late", runtime_type="job"))
    assert await recorder.flush(timeout=10)

    [run] = await _rows(migrated, "select phase, agent, message, runtime_type from agent_run_records")
    assert run == {"phase": "Succeeded", "agent": "codex", "message": "done", "runtime_type": "job"}
    assert len(await _rows(migrated, "select * from agent_run_transitions")) == 1


async def test_secrets_in_messages_are_not_persisted(recorder: RunRecorder, migrated: str) -> None:
    token = "ghp_" + "a" * 36
    recorder.record(
        _event(phase="Failed", message=f"clone failed: https://user:{token}@github.com/a/b token={token}")
    )
    assert await recorder.flush(timeout=10)
    [run] = await _rows(migrated, "select message from agent_run_records")
    assert token not in run["message"]
    [transition] = await _rows(migrated, "select message from agent_run_transitions")
    assert token not in transition["message"]


async def test_invalid_data_is_rejected_alone_and_the_rest_is_written(
    migrated: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Postgres refusing one record's data must neither block the queue forever nor drop its neighbours."""
    real_apply = recorder_module.apply_events

    async def refuse_bad(conn: AsyncConnection, events: Sequence[RunEvent]) -> ApplyResult:
        result = await real_apply(conn, events)
        if any(e.uid == "bad" for e in events):
            await conn.execute(text("select 1/0"))  # a server-side DataError (22012), rolls the batch back
        return result

    monkeypatch.setattr(recorder_module, "apply_events", refuse_bad)
    registry = CollectorRegistry()
    rec = RunRecorder(migrated, initial_backoff=0.05, max_backoff=0.2, registry=registry)
    rec.record(_event(uid="ok-1", phase="Running"))
    rec.record(_event(uid="bad", phase="Failed"))
    rec.record(_event(uid="ok-2", phase="Running"))
    await rec.start()
    assert await rec.flush(timeout=10)
    await rec.close()

    rows = await _rows(migrated, "select run_uid from agent_run_records order by run_uid")
    assert [r["run_uid"] for r in rows] == ["ok-1", "ok-2"]
    assert _sample(registry, "jangar_run_records_rejected_total") == 1
    assert _sample(registry, "jangar_run_records_written_total") == 2


def test_out_of_range_exit_codes_are_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="exit_code"):
        _event(exit_code=2**40)


async def test_records_wait_for_migrations(database_url: str) -> None:
    """Started before the schema exists (JANGAR_MIGRATIONS=skip, migrated later): records wait, then land."""
    rec = RunRecorder(database_url, initial_backoff=0.05, max_backoff=0.2, registry=CollectorRegistry())
    await rec.start()
    rec.record(_event(phase="Running"))
    await asyncio.sleep(0.3)
    assert rec.pending == 1
    assert not rec.healthy
    await apply_migrations(database_url)
    assert await rec.flush(timeout=10)
    await rec.close()
    assert len(await _rows(database_url, "select * from agent_run_transitions")) == 1


async def test_records_can_be_read_back(recorder: RunRecorder, migrated: str) -> None:
    recorder.record(_event(phase="Running", at=T0, agent="codex"))
    recorder.record(_event(phase="Succeeded", at=T0 + timedelta(seconds=9), reason="Completed"))
    recorder.record(_event(uid="uid-2", phase="Pending"))
    assert await recorder.flush(timeout=10)

    engine = create_engine(migrated)
    try:
        view = await get_run(engine, "uid-1")
        assert view is not None
        assert view.phase == "Succeeded" and view.record["agent"] == "codex"
        assert [(t.from_phase, t.to_phase, t.reason) for t in view.transitions] == [
            (None, "Running", None),
            ("Running", "Succeeded", "Completed"),
        ]
        assert await get_run(engine, "nope") is None
        assert [r["run_uid"] for r in await find_runs(engine, "agents", name="run-uid-2")] == ["uid-2"]
        assert len(await find_runs(engine, "agents")) == 2
        assert await find_runs(engine, "elsewhere") == []
    finally:
        await engine.dispose()
