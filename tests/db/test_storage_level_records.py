"""Level-triggered records against real Postgres (issue 12): offers of an unchanged run stay off the
database, a fresh process re-offering every run changes nothing and never moves a record backwards, the
bounded buffer refuses and then takes the re-offer, and `JANGAR_MIGRATIONS=skip` on an empty database is a
not-ready error naming the variable and the tables instead of an endless, growing retry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from jangar.app import RecorderRunnable, SchemaMissing
from jangar.storage import Offer, RunEvent, RunRecorder, apply_migrations, create_engine
from tests.db.conftest import RestartablePostgres
from tests.support.waiting import eventually

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _event(uid: str, phase: str, seconds: int = 0, **kw: Any) -> RunEvent:
    return RunEvent(
        uid=uid, namespace="agents", name=uid, at=T0 + timedelta(seconds=seconds), phase=phase, **kw
    )


async def _rows(url: str, sql: str) -> list[dict[str, Any]]:
    engine = create_engine(url, one_shot=True)
    try:
        async with engine.connect() as conn:
            return [dict(row._mapping) for row in await conn.execute(text(sql))]
    finally:
        await engine.dispose()


def _written(registry: CollectorRegistry) -> float:
    return registry.get_sample_value("jangar_run_records_written_total") or 0.0


def _recorder(url: str, registry: CollectorRegistry, **kw: Any) -> RunRecorder:
    return RunRecorder(url, initial_backoff=0.05, max_backoff=0.3, registry=registry, **kw)


async def test_a_fresh_process_re_offering_every_run_writes_each_once_and_never_backwards(
    database_url: str,
) -> None:
    await apply_migrations(database_url)
    first_registry = CollectorRegistry()
    first = _recorder(database_url, first_registry)
    await first.start()
    first.record(_event("a", "Running", 0, provider="codex"))
    first.record(_event("a", "Succeeded", 9, exit_code=0, finished_at=T0 + timedelta(seconds=9)))
    first.record(_event("b", "Running", 0))
    assert await first.flush(timeout=10)
    for _ in range(20):  # every later reconcile of the unchanged runs: no Postgres round trip
        assert first.record(_event("a", "Succeeded", 9, exit_code=0, finished_at=T0 + timedelta(seconds=9)))
        assert first.record(_event("b", "Running", 0)) is Offer.RECORDED
    assert _written(first_registry) == 3
    await first.close(timeout=5)
    before = await _rows(database_url, "select * from agent_run_records order by run_uid")
    transitions = await _rows(database_url, "select * from agent_run_transitions order by id")

    # A restarted controller offers every run's current state once, and a stale leader's buffer
    # (an older snapshot of a) lands after it: the rows stay as they were.
    second_registry = CollectorRegistry()
    second = _recorder(database_url, second_registry)
    await second.start()
    offers = [
        second.record(_event("a", "Succeeded", 9, exit_code=0, finished_at=T0 + timedelta(seconds=9))),
        second.record(_event("b", "Running", 0)),
        second.record(_event("a", "Running", 0, exit_code=None)),
    ]
    assert offers == [Offer.PENDING] * 3
    assert await second.flush(timeout=10)
    await second.close(timeout=5)
    after = await _rows(database_url, "select * from agent_run_records order by run_uid")
    assert [{k: v for k, v in r.items() if k != "updated_at"} for r in after] == [
        {k: v for k, v in r.items() if k != "updated_at"} for r in before
    ]
    assert after[0]["phase"] == "Succeeded" and after[0]["exit_code"] == 0 and after[0]["provider"] == "codex"
    assert await _rows(database_url, "select * from agent_run_transitions order by id") == transitions


async def test_a_full_buffer_during_an_outage_refuses_and_the_re_offer_lands_later(
    restartable_postgres: RestartablePostgres,
) -> None:
    url = restartable_postgres.url
    await apply_migrations(url)
    registry = CollectorRegistry()
    rec = _recorder(url, registry, max_pending=2)
    await rec.start()
    try:
        restartable_postgres.stop()
        assert rec.record(_event("a", "Succeeded", 5)) is Offer.PENDING
        assert rec.record(_event("b", "Succeeded", 5)) is Offer.PENDING
        assert rec.record(_event("c", "Succeeded", 5)) is Offer.REFUSED
        await eventually(lambda: not rec.healthy, interval=0.05, what="the outage noticed")
        details = rec.status().as_dict()
        assert (details["state"], details["full"], details["pending"], details["refused"]) == (
            "buffer-full",
            True,
            2,
            1,
        )
        assert registry.get_sample_value("jangar_run_records_refused_total") == 1
        restartable_postgres.start()
        assert await rec.flush(timeout=30)
        assert rec.record(_event("c", "Succeeded", 5)) is Offer.PENDING  # the controller's re-offer
        assert await rec.flush(timeout=10)
        assert rec.status().state == "ok"
    finally:
        await rec.close(timeout=5)
    rows = await _rows(url, "select run_uid, phase from agent_run_records order by run_uid")
    assert [(r["run_uid"], r["phase"]) for r in rows] == [
        ("a", "Succeeded"),
        ("b", "Succeeded"),
        ("c", "Succeeded"),
    ]


async def test_skipped_migrations_on_an_empty_database_is_a_clear_not_ready_error(database_url: str) -> None:
    rec = _recorder(database_url, CollectorRegistry())
    runnable = RecorderRunnable(rec, database_url, "skip")
    await runnable.start()
    try:
        await eventually(lambda: bool(rec.missing_tables), timeout=30, what="the missing schema found")
        with pytest.raises(SchemaMissing) as info:
            runnable.schema_check()
        message = str(info.value)
        assert "JANGAR_MIGRATIONS=skip" in message and "agent_run_records" in message
        assert repr(info.value) == message  # what /ready prints as the check's reason
        assert [rec.record(_event(f"r{i}", "Running")) for i in range(100)] == [Offer.REFUSED] * 100
        assert rec.pending == 0  # no endless growth
        assert rec.status().as_dict()["state"] == "schema-missing"
        await apply_migrations(database_url)  # an operator's migration job
        await eventually(lambda: not rec.missing_tables, timeout=60, what="the schema found")
        assert runnable.schema_check() is True
        assert rec.record(_event("r0", "Running")) is Offer.PENDING
        assert await rec.flush(timeout=10)
    finally:
        await runnable.stop(timeout=5)
    assert [r["run_uid"] for r in await _rows(database_url, "select run_uid from agent_run_records")] == [
        "r0"
    ]


async def test_skipped_migrations_on_a_migrated_database_is_ready(database_url: str) -> None:
    await apply_migrations(database_url)
    rec = _recorder(database_url, CollectorRegistry())
    runnable = RecorderRunnable(rec, database_url, "skip")
    await runnable.start()
    try:
        await eventually(
            lambda: rec.record(_event("x", "Running")) is Offer.PENDING, timeout=30, what="taken"
        )
        assert runnable.schema_check() is True
        assert await rec.flush(timeout=10)
    finally:
        await runnable.stop(timeout=5)


async def test_an_older_resource_version_of_the_same_phase_and_instant_never_overwrites(
    database_url: str,
) -> None:
    await apply_migrations(database_url)
    rec = _recorder(database_url, CollectorRegistry())
    await rec.start()
    try:
        rec.record(_event("a", "Failed", 5, message="newer", exit_code=2, source_version=120))
        assert await rec.flush(timeout=10)
        rec.record(
            _event("a", "Failed", 5, message="older", exit_code=1, source_version=100)
        )  # a late buffer
        assert await rec.flush(timeout=10)
        row = (await _rows(database_url, "select * from agent_run_records"))[0]
        assert (row["message"], row["exit_code"], row["source_version"]) == ("newer", 2, 120)
        rec.record(_event("a", "Failed", 5, message="newest", exit_code=3, source_version=130))
        assert await rec.flush(timeout=10)
        row = (await _rows(database_url, "select * from agent_run_records"))[0]
        assert (row["message"], row["exit_code"], row["source_version"]) == ("newest", 3, 130)
        rec.record(
            _event("a", "Failed", 5, message="unversioned", source_version=None)
        )  # no version: as before
        assert await rec.flush(timeout=10)
        row = (await _rows(database_url, "select * from agent_run_records"))[0]
        assert (row["message"], row["source_version"]) == ("unversioned", 130)
    finally:
        await rec.close(timeout=5)
    assert len(await _rows(database_url, "select * from agent_run_transitions")) == 1


async def test_the_resource_version_orders_snapshots_whose_status_times_go_backwards(
    database_url: str,
) -> None:
    """Found by the kill -9 fault run: a run adopted after a crash showed Running with `startedAt` at the
    adoption (16:17:51), later than its Job's finish (16:16:02), then Succeeded with `finishedAt` 16:16:02.
    By times the terminal snapshot looked stale and the record stayed Running; the resourceVersion says
    it is newer. A stale buffer delivering the older Running snapshot afterwards does not regress it."""
    await apply_migrations(database_url)
    adopted = T0 + timedelta(seconds=109)
    rec = _recorder(database_url, CollectorRegistry())
    await rec.start()
    try:
        rec.record(_event("a", "Running", 109, started_at=adopted, source_version=3402))
        rec.record(
            _event(
                "a",
                "Succeeded",
                2,
                finished_at=T0 + timedelta(seconds=2),
                message="done",
                source_version=3454,
            )
        )
        assert await rec.flush(timeout=10)
        row = (await _rows(database_url, "select * from agent_run_records"))[0]
        assert (row["phase"], row["source_version"]) == ("Succeeded", 3454)
        late = RunRecorder(database_url, registry=CollectorRegistry())  # another process's old buffer
        await late.start()
        late.record(_event("a", "Running", 109, started_at=adopted, message="stale", source_version=3402))
        assert await late.flush(timeout=10)
        await late.close(timeout=5)
        row = (await _rows(database_url, "select * from agent_run_records"))[0]
        assert (row["phase"], row["source_version"], row["message"]) == ("Succeeded", 3454, "done")
    finally:
        await rec.close(timeout=5)
    phases = await _rows(database_url, "select from_phase, to_phase from agent_run_transitions order by id")
    assert [(p["from_phase"], p["to_phase"]) for p in phases] == [(None, "Running"), ("Running", "Succeeded")]
