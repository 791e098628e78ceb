"""A database outage delays run records but never loses or duplicates them (reference §12)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry
from sqlalchemy import text

from jangar.storage import RunEvent, RunRecorder, apply_migrations, create_engine
from tests.db.conftest import RestartablePostgres
from tests.support.waiting import eventually

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _phase(uid: str, phase: str, seconds: int) -> RunEvent:
    return RunEvent(uid=uid, namespace="agents", name=uid, phase=phase, at=T0 + timedelta(seconds=seconds))


async def _transitions(url: str) -> list[tuple[str, str | None, str]]:
    engine = create_engine(url, one_shot=True)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("select run_uid, from_phase, to_phase from agent_run_transitions order by run_uid, at")
            )
            return [(r.run_uid, r.from_phase, r.to_phase) for r in rows]
    finally:
        await engine.dispose()


async def test_records_made_while_postgres_is_down_are_written_once_it_is_back(
    restartable_postgres: RestartablePostgres,
) -> None:
    url = restartable_postgres.url
    await apply_migrations(url)
    registry = CollectorRegistry()
    rec = RunRecorder(url, initial_backoff=0.05, max_backoff=0.3, registry=registry)
    await rec.start()
    rec.record(_phase("a", "Queued", 0))
    assert await rec.flush(timeout=10)
    assert registry.get_sample_value("jangar_database_up") == 1

    restartable_postgres.stop()
    for uid in ("a", "b"):
        rec.record(_phase(uid, "Running", 10))
        rec.record(_phase(uid, "Succeeded", 20))
    rec.record(_phase("b", "Succeeded", 20))  # a re-reconcile during the outage: deduplicated

    await eventually(lambda: not rec.healthy, interval=0.02, what="the recorder to report unhealthy")
    assert rec.pending == 4
    assert registry.get_sample_value("jangar_run_records_pending") == 4
    assert registry.get_sample_value("jangar_database_up") == 0
    assert (registry.get_sample_value("jangar_run_record_write_errors_total") or 0) >= 1
    details = rec.status().as_dict()
    assert details["healthy"] is False and details["pending"] == 4 and details["lastError"]
    await asyncio.sleep(0.5)  # several retries fail; nothing is dropped
    assert rec.pending == 4

    restartable_postgres.start()
    assert await rec.flush(timeout=20)
    assert rec.healthy
    assert registry.get_sample_value("jangar_database_up") == 1
    assert registry.get_sample_value("jangar_run_records_pending") == 0
    assert await rec.close(timeout=5) == 0

    assert await _transitions(url) == [
        ("a", None, "Queued"),
        ("a", "Queued", "Running"),
        ("a", "Running", "Succeeded"),
        ("b", None, "Running"),
        ("b", "Running", "Succeeded"),
    ]


async def test_killed_connections_are_replaced_without_losing_records(
    restartable_postgres: RestartablePostgres,
) -> None:
    url = restartable_postgres.url
    await apply_migrations(url)
    rec = RunRecorder(url, initial_backoff=0.05, max_backoff=0.3, registry=CollectorRegistry())
    await rec.start()
    rec.record(_phase("a", "Running", 0))
    assert await rec.flush(timeout=10)

    engine = create_engine(url, one_shot=True)
    async with engine.connect() as conn:
        await conn.execute(
            text("select pg_terminate_backend(pid) from pg_stat_activity where pid <> pg_backend_pid()")
        )
    await engine.dispose()

    rec.record(_phase("a", "Succeeded", 5))
    assert await rec.flush(timeout=10)
    await rec.close()
    assert await _transitions(url) == [("a", None, "Running"), ("a", "Running", "Succeeded")]


async def test_close_gives_up_at_its_deadline_and_reports_what_is_left(
    restartable_postgres: RestartablePostgres,
) -> None:
    url = restartable_postgres.url
    await apply_migrations(url)
    restartable_postgres.stop()
    rec = RunRecorder(url, initial_backoff=0.05, max_backoff=0.1, registry=CollectorRegistry())
    await rec.start()
    rec.record(_phase("a", "Running", 0))
    started = time.monotonic()
    assert await rec.close(timeout=0.5) == 1
    assert time.monotonic() - started < 3
