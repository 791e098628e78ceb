"""The recorder's offers without Postgres: the bounded buffer, refusals, the committed-snapshot memory that
keeps unchanged runs off the database, and the schema check (the writer's SQL is replaced by fakes)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from jangar.storage import Offer, RunEvent, RunRecorder
from jangar.storage import recorder as recorder_module
from jangar.storage.store import ApplyResult

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _event(uid: str, phase: str = "Running", seconds: int = 0, **kw: Any) -> RunEvent:
    return RunEvent(
        uid=uid, namespace="agents", name=f"run-{uid}", at=T0 + timedelta(seconds=seconds), phase=phase, **kw
    )


class FakeDatabase:
    """An engine stand-in: `begin()` commits a batch through the patched `apply_events` unless `down`;
    `connect()` answers the schema query with `missing`."""

    def __init__(self) -> None:
        self.down = False
        self.missing: list[str] = []
        self.batches: list[list[str]] = []

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[FakeDatabase]:
        if self.down:
            raise ConnectionRefusedError("database down")
        yield self

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[FakeDatabase]:
        if self.down:
            raise ConnectionRefusedError("database down")
        yield self

    async def execute(self, *_: Any, **__: Any) -> Any:
        missing = list(self.missing)

        class Result:
            def scalars(self) -> list[str]:
                return missing

        return Result()


@pytest.fixture
def db(monkeypatch: pytest.MonkeyPatch) -> FakeDatabase:
    fake = FakeDatabase()

    async def apply_events(conn: FakeDatabase, events: Sequence[RunEvent]) -> ApplyResult:
        conn.batches.append([f"{e.uid}:{e.phase}" for e in events])
        return ApplyResult(events=len(events), transitions=len(events))

    monkeypatch.setattr(recorder_module, "apply_events", apply_events)
    return fake


def _recorder(db: FakeDatabase, registry: CollectorRegistry, **kw: Any) -> RunRecorder:
    return RunRecorder(
        engine=db,  # type: ignore[arg-type]
        initial_backoff=0.01,
        max_backoff=0.02,
        registry=registry,
        **kw,
    )


def _sample(registry: CollectorRegistry, name: str) -> float:
    return registry.get_sample_value(name) or 0.0


async def test_an_unchanged_snapshot_is_recorded_once_and_never_written_again(db: FakeDatabase) -> None:
    rec = _recorder(db, CollectorRegistry())
    await rec.start()
    try:
        assert rec.record(_event("a")) is Offer.PENDING
        assert rec.record(_event("a")) is Offer.PENDING  # still queued: not queued twice
        assert await rec.flush(timeout=5)
        for _ in range(100):  # every later reconcile of the unchanged run
            assert rec.record(_event("a", seconds=3)) is Offer.RECORDED  # `at` alone is no change
        assert db.batches == [["a:Running"]]
        assert rec.record(_event("a", phase="Succeeded", seconds=9, exit_code=0)) is Offer.PENDING
        assert await rec.flush(timeout=5)
        assert db.batches[-1] == ["a:Succeeded"]
        assert rec.record(_event("a", phase="Succeeded", seconds=9, exit_code=0)) is Offer.RECORDED
    finally:
        await rec.close(timeout=2)


async def test_a_full_buffer_refuses_new_offers_and_takes_them_again_once_drained(db: FakeDatabase) -> None:
    registry = CollectorRegistry()
    rec = _recorder(db, registry, max_pending=3)
    db.down = True
    await rec.start()
    try:
        assert [rec.record(_event(uid)) for uid in "abc"] == [Offer.PENDING] * 3
        assert rec.record(_event("d")) is Offer.REFUSED
        assert rec.record(_event("d")) is Offer.REFUSED
        assert rec.record(_event("a")) is Offer.PENDING  # already queued: not a new record
        assert rec.pending == 3
        status = rec.status()
        assert (status.full, status.state, status.refused, status.capacity) == (True, "buffer-full", 2, 3)
        assert status.as_dict()["state"] == "buffer-full"
        assert _sample(registry, "jangar_run_records_refused_total") == 2
        assert _sample(registry, "jangar_run_records_pending") == 3
        assert _sample(registry, "jangar_run_records_buffer_capacity") == 3
        db.down = False
        assert await rec.flush(timeout=5)
        assert rec.record(_event("d")) is Offer.PENDING  # the re-offer is taken now
        assert await rec.flush(timeout=5)
        written = [item for batch in db.batches for item in batch]
        assert sorted(written) == ["a:Running", "b:Running", "c:Running", "d:Running"]
        assert rec.status().state == "ok"
    finally:
        await rec.close(timeout=2)


async def test_a_database_outage_shows_in_the_status_and_loses_nothing_queued(db: FakeDatabase) -> None:
    rec = _recorder(db, CollectorRegistry())
    db.down = True
    await rec.start()
    try:
        rec.record(_event("a"))
        for _ in range(200):
            if not rec.healthy:
                break
            await asyncio.sleep(0.01)
        assert rec.status().state == "database-down"
        assert "database down" in (rec.last_error or "")
        db.down = False
        assert await rec.flush(timeout=5)
        assert rec.status().state == "ok"
        assert db.batches == [["a:Running"]]
    finally:
        await rec.close(timeout=2)


async def test_a_newer_snapshot_queued_behind_an_older_one_is_pending_until_both_commit(
    db: FakeDatabase,
) -> None:
    rec = _recorder(db, CollectorRegistry())
    db.down = True
    await rec.start()
    try:
        assert rec.record(_event("a")) is Offer.PENDING
        assert rec.record(_event("a", phase="Succeeded", seconds=5)) is Offer.PENDING
        assert rec.record(_event("a")) is Offer.PENDING  # the older state again: queued once more
        assert rec.pending == 3
        db.down = False
        assert await rec.flush(timeout=5)
        assert rec.record(_event("a")) is Offer.RECORDED  # the newest committed snapshot is this one
        assert rec.record(_event("a", phase="Succeeded", seconds=5)) is Offer.PENDING
    finally:
        await rec.close(timeout=2)


async def test_a_missing_schema_refuses_offers_instead_of_growing_and_recovers(db: FakeDatabase) -> None:
    rec = _recorder(db, CollectorRegistry())
    db.missing = ["agent_run_records", "agent_run_transitions"]
    await rec.start(check_schema=True)
    try:
        for _ in range(200):
            if rec.missing_tables:
                break
            await asyncio.sleep(0.01)
        assert rec.missing_tables == ("agent_run_records", "agent_run_transitions")
        assert [rec.record(_event(str(i))) for i in range(50)] == [Offer.REFUSED] * 50
        assert rec.pending == 0  # no endless growth
        assert rec.status().state == "schema-missing"
        assert rec.status().as_dict()["missingTables"] == ["agent_run_records", "agent_run_transitions"]
        db.missing = []  # a migration job created the tables
        for _ in range(500):
            if not rec.missing_tables:
                break
            await asyncio.sleep(0.01)
        assert rec.missing_tables == ()
        assert rec.record(_event("x")) is Offer.PENDING
        assert await rec.flush(timeout=5)
        assert db.batches == [["x:Running"]]
    finally:
        await rec.close(timeout=2)


def test_the_buffer_bound_is_validated() -> None:
    with pytest.raises(ValueError, match="max_pending"):
        RunRecorder(engine=FakeDatabase(), max_pending=0)  # type: ignore[arg-type]


def test_source_version_is_the_integer_resource_version_or_none() -> None:
    from jangar.storage.events import source_version

    assert source_version("12345") == 12345
    assert [source_version(v) for v in (None, "", "abc", "12a", "9" * 19)] == [None] * 5


async def test_a_resource_version_bump_alone_is_not_a_new_record(db: FakeDatabase) -> None:
    rec = _recorder(db, CollectorRegistry())
    await rec.start()
    try:
        assert rec.record(_event("a", source_version=10)) is Offer.PENDING
        assert await rec.flush(timeout=5)
        assert rec.record(_event("a", source_version=11)) is Offer.RECORDED  # say, a label changed
        assert db.batches == [["a:Running"]]
    finally:
        await rec.close(timeout=2)
